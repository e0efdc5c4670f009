"""The pilot and proxyv2 images (Containerfile, `make images`) built once for the module and run
with the real podman: the control plane in the pilot image serves a real Envoy from a dev cluster,
the proxyv2 image runs the injector's init-container args and the agent unprivileged, and both
images hold exactly the pinned dependency set and nothing of the build.

Skips only when podman cannot run containers on this machine (the reason is given); a failing
build is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from meshplane.webhooks import settings, sidecar
from tests.images import podman
from tests.support import envoyproc, kubeobjects, netaddr
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for

pytestmark = pytest.mark.timeout(1500)  # the module's first test includes the build (~2 min cold)

ROOT = podman.ROOT
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
NAMES = ("pilot", "proxyv2")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> podman.Built:
    reason = podman.unusable()
    if reason and os.geteuid() != 0:
        pytest.skip(f"not root, so podman may not run containers: {reason}")
    assert not reason, f"as root (CI installs podman, buildah, runc) podman must run containers: {reason}"
    tree = podman.clean_copy(tmp_path_factory.mktemp("tree"))
    b = podman.make_images(tree)
    print(f"make images: {b.seconds:.1f} s ({b.set_line})")
    return b


def manifest(b: podman.Built) -> list[dict[str, Any]]:
    """`meshplane manifest generate` with the line `make images` printed."""
    p = subprocess.run(
        [sys.executable, "-m", "meshplane", "manifest", "generate", *b.set_flags],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(p.stdout) if d]


def rendered(b: podman.Built, kind: str, name: str) -> dict[str, Any]:
    return next(d for d in manifest(b) if d["kind"] == kind and d["metadata"]["name"] == name)


def run(
    image: str, *args: str, opts: tuple[str, ...] = (), timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return podman.podman("run", "--rm", *opts, image, *args, timeout=timeout, check=False)


def in_image(image: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`sh -ec SCRIPT` in the image as root (to see every file), no network."""
    return run(
        image, "-ec", script, "sh", *args, opts=("--network", "none", "--user", "0:0", "--entrypoint", "sh")
    )


# --- what make images produced ---------------------------------------------------------------


def test_make_images_tags_both_images_for_the_printed_install_flags(built: podman.Built) -> None:
    assert built.tag == VERSION
    assert built.set_line == f"--set values.global.hub={podman.TEST_HUB} --set values.global.tag={VERSION}"
    for name in NAMES:
        labels = podman.inspect(built.image(name))["Config"]["Labels"]
        assert labels["org.opencontainers.image.version"] == VERSION
        assert labels["org.opencontainers.image.source"]
        assert labels["org.opencontainers.image.title"] == f"meshplane {name}"
    # the install the printed line configures renders exactly these images
    istiod = rendered(built, "Deployment", "istiod")
    assert istiod["spec"]["template"]["spec"]["containers"][0]["image"] == built.image("pilot")
    injector = rendered(built, "ConfigMap", "istio-sidecar-injector")
    assert json.loads(injector["data"]["values"])["global"]["proxy"]["image"] == built.image("proxyv2")


@pytest.mark.parametrize("name", NAMES)
def test_installed_packages_are_the_constraints_file(built: podman.Built, name: str) -> None:
    # pip freeze inside the image, run from the base's own pip wheel (the image's venv has no pip)
    p = in_image(
        built.image(name),
        'w=$(ls /usr/share/python-wheels/pip-*.whl); exec /opt/meshplane/bin/python "$w/pip" freeze'
        " --all --no-cache-dir --disable-pip-version-check",
    )
    assert p.returncode == 0, p.stderr
    frozen = sorted(line for line in p.stdout.splitlines() if not line.startswith("meshplane"))
    pinned = sorted(
        line
        for line in (ROOT / "images" / "constraints.txt").read_text().splitlines()
        if line and line[0] != "#"
    )
    assert frozen == pinned
    assert [line for line in p.stdout.splitlines() if line.startswith("meshplane")], p.stdout


@pytest.mark.parametrize("name", NAMES)
def test_images_carry_no_compiler_pip_cache_or_tests(built: podman.Built, name: str) -> None:
    p = in_image(
        built.image(name),
        """
        for c in cc gcc g++ c++ x86_64-linux-gnu-gcc-12 make; do
          if command -v "$c" >/dev/null; then echo "compiler: $c"; fi
        done
        find / -xdev \\( -path '*/.cache/pip' -o -path '/tmp/pip-*' -o -path /root/.cache \\) -print
        find /opt /usr/lib/python3* -xdev -type d \\( -name tests -o -name test -o -name idle_test \\) -print
        ls /run/host-ca.crt 2>/dev/null || true
        env | grep -i '^PIP_' || true
        """,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""
    history = podman.podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", built.image(name)).stdout
    assert "host-ca" not in history and "PIP_CERT" not in history


# --- pilot: the control plane from the image --------------------------------------------------


@contextlib.asynccontextmanager
async def container(*args: str) -> AsyncIterator[str]:
    """`podman run -d ARGS`; removed by its ID at the end."""
    p = await asyncio.to_thread(podman.podman, "run", "-d", *args)
    cid = p.stdout.strip()
    try:
        yield cid
    finally:
        await asyncio.to_thread(podman.remove, cid)


@pytest.fixture
def cluster1() -> Iterator[ThreadedCluster]:
    c = ThreadedCluster("cluster1").start()
    try:
        yield c
    finally:
        c.close()


@pytest.mark.envoy
async def test_pilot_image_serves_a_dev_cluster_to_real_envoy(
    built: podman.Built, cluster1: ThreadedCluster, tmp_path: Path
) -> None:
    # The Deployment `install` renders with the printed flags: its image and its args.
    spec = rendered(built, "Deployment", "istiod")["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["args"][0] == "discovery"
    # Host networking, the dev cluster's kubeconfig, ports of our own, and plaintext xDS for the
    # test's Envoy (which has no token or SDS): the rendered `--disable-plaintext-xds` is dropped.
    args = [a for a in c["args"] if a != "--disable-plaintext-xds"]
    kubeconfig = cluster1.write_kubeconfig(tmp_path / "kubeconfig")
    kubeconfig.chmod(0o644)  # the image runs as uid 1337; the test cluster's own admin credential
    ports = {p: netaddr.free_port() for p in ("xds", "grpc", "mon", "hook")}
    w = lightkube_client(cluster1.kubeconfig)
    await kubeobjects.ensure_namespace(w, kubeobjects.ISTIO_SYSTEM)
    sc = c["securityContext"]  # what podman.pilot_opts applies
    assert sc["runAsUser"] == 1337 and sc["readOnlyRootFilesystem"]
    assert sc["capabilities"] == {"drop": ["ALL"]}
    opts = podman.pilot_opts(kubeconfig)
    flags = podman.pilot_flags(ports)
    ns = unique("sample")
    cluster = f"outbound|5000||helloworld.{ns}.svc.cluster.local"
    async with container(*opts, c["image"], *args, *flags) as cid:

        async def ready() -> bool:
            try:
                async with (
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s,
                    s.get(f"http://127.0.0.1:{ports['mon']}/ready") as r,
                ):
                    return r.status == 200
            except aiohttp.ClientError:
                state = await asyncio.to_thread(podman.inspect_container, cid)
                if not state["Running"]:
                    out = await asyncio.to_thread(podman.logs, cid)
                    raise RuntimeError(f"pilot container exited ({state['ExitCode']}):\n{out}") from None
                return False

        try:
            await wait_for(ready, timeout=90, interval=0.2, what="pilot container /ready")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{await asyncio.to_thread(podman.logs, cid)}") from e
        net = netaddr.Loopback()
        bs = tmp_path / "sleep.json"
        await envoyproc.bootstrap_cli(
            bs, discovery=f"127.0.0.1:{ports['xds']}", pod="sleep", namespace=ns, ip=net.ip(),
            localhost=net.ip(), env={"ISTIO_META_CLUSTER_ID": "cluster1"},
        )  # fmt: skip
        async with envoyproc.run(bs, tmp_path) as envoy:
            backend = net.ip()
            await kubeobjects.add_service(w, ns, "helloworld")
            await kubeobjects.set_slice(w, ns, "helloworld", [(backend, True, False)])

            async def served() -> bool:
                return f"{backend}:5000" in await envoy.hosts(cluster)

            try:
                await wait_for(served, timeout=60, interval=0.2, what=f"{cluster} in Envoy")
            except AssertionError as e:
                raise AssertionError(
                    f"{e}\n{envoy.log_tail()}\n{await asyncio.to_thread(podman.logs, cid)}"
                ) from e
    await w.close()


# --- proxyv2: the init container and the agent ------------------------------------------------


def init_args(b: podman.Built) -> tuple[str, list[str]]:
    """The injector's istio-init container for a plain pod, with the image install configures."""
    values = json.loads(rendered(b, "ConfigMap", "istio-sidecar-injector")["data"]["values"])
    pod = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"containers": [{"name": "web"}]}}
    s = settings.InjectionSettings(proxy_image=values["global"]["proxy"]["image"])
    init = sidecar.render(pod, s, sidecar.deploy_meta(pod, "default"), {}).init_containers[0]
    return init["image"], list(init["args"])


def test_proxyv2_dry_run_prints_what_the_host_agent_prints(built: podman.Built) -> None:
    image, args = init_args(built)
    assert image == built.image("proxyv2") and args[0] == "istio-iptables"
    host = subprocess.run(
        [sys.executable, "-m", "meshplane", "agent", *args, "--dry-run"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert host.returncode == 0, host.stderr
    inside = run(image, *args, "--dry-run", opts=("--network", "none"))
    assert inside.returncode == 0, inside.stderr
    assert "-j ISTIO_REDIRECT" in inside.stdout
    assert inside.stdout == host.stdout


def test_proxyv2_init_container_programs_the_capture_rules(built: podman.Built) -> None:
    image, args = init_args(built)
    # As the kubelet runs istio-init: root, NET_ADMIN and NET_RAW, in the pod's (here: a new)
    # network namespace; then read the nat table back with the image's own iptables-save.
    kubelet = ("--network", "none", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN,NET_RAW")
    p = run(
        image, "-ec", '/opt/meshplane/bin/meshplane agent "$@"; iptables-save -t nat', "sh", *args,
        opts=(*kubelet, "--entrypoint", "sh"),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in p.stdout
    assert "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006" in p.stdout
    assert "--uid-owner 1337" in p.stdout


def test_proxyv2_agent_and_envoy_start_as_uid_1337_without_capabilities(built: podman.Built) -> None:
    image = built.image("proxyv2")
    unprivileged = ("--user", "1337:1337", "--cap-drop", "ALL", "--read-only", "--security-opt",
                    "no-new-privileges", "--network", "none")  # fmt: skip
    helped = run(image, "--help", opts=unprivileged)
    assert helped.returncode == 0, helped.stderr
    for command in ("proxy", "istio-iptables", "bootstrap"):
        assert command in helped.stdout
    who = run(
        image, "-c", "id -u; meshplane version; envoy --version", opts=(*unprivileged, "--entrypoint", "sh")
    )
    assert who.returncode == 0, who.stderr
    uid, version, *envoy = who.stdout.splitlines()
    assert (uid, version) == ("1337", VERSION)
    assert "envoy  version: " in "\n".join(envoy)  # the wheel's Envoy runs as 1337
    # pilot's default user is 1337 (Istio's Dockerfile.pilot: USER 1337:1337)
    assert podman.inspect(built.image("pilot"))["Config"]["User"] == "1337:1337"
    pilot = run(
        built.image("pilot"), "version", opts=("--cap-drop", "ALL", "--read-only", "--network", "none")
    )
    assert (pilot.returncode, pilot.stdout.strip()) == (0, VERSION), pilot.stderr
