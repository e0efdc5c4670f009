"""Issue 11's streaming pod subresources on the lab (netns mode), with the user's real kubectl:
the guide's verify step exactly as Istio's page writes it (`kubectl exec … -c curl … -- curl -sS
helloworld.sample:5000/hello`, from both clusters, both versions answering), exit codes, stdin,
a terminal, `kubectl logs -f` of a helloworld pod showing the requests, attach, and
`kubectl port-forward` to the control plane's monitoring port serving /metrics.

One lab (`meshplane demo`, netns mode) for the module."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshplane.lab.network import plan as netplan
from tests.e2e.test_lab_guide import demo
from tests.integration.lab.test_lab_cli import lab, pids
from tests.support import clusters, labnode, podnet
from tests.support.wait import WaitTimeout, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.envoy]
VERSION = re.compile(r"Hello version: (v\d), instance: (\S+)")
# Istio's "Verify the installation" page (istio.io/latest/docs/setup/install/multicluster/verify/)
VERIFY = (
    'kubectl exec --context="${CTX}" -n sample -c curl '
    '"$(kubectl get pod --context="${CTX}" -n sample -l app=curl -o jsonpath=\'{.items[0].metadata.name}\')" '
    "-- curl -sS helloworld.sample:5000/hello"
)


def _env(d: Path) -> dict[str, str]:
    home = d / ".kubectl-home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": str(d / "kubeconfig")}


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    podnet.require_root()
    d = tmp_path_factory.mktemp("streams") / "lab"
    pod_pids: list[int] = []
    try:
        run = demo(d, labnode.address_base(), "netns")
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
        for ctx in ("cluster1", "cluster2"):
            kubectl(d, ctx, "apply", "-f", str(labnode.ROOT / "samples/curl/curl.yaml"), "-n", "sample")
        for ctx in ("cluster1", "cluster2"):
            kubectl(
                d,
                ctx,
                "-n",
                "sample",
                "wait",
                "--for=condition=Available",
                "deployment/curl",
                "--timeout=120s",
            )
        yield d
        pod_pids = [int(p.read_text().split()[0]) for p in (d / "nodes").rglob("*.pid")]
    finally:
        down = lab("down", "--dir", str(d))
    assert down.returncode == 0, down.stderr
    assert not [p for p in [*pids(d).values(), *pod_pids] if labnode.alive(p)]
    if (d / "network.json").exists():
        assert netplan.load(d / "network.json").lab_id


def kubectl(
    d: Path, ctx: str, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return clusters.kubectl(d / "kubeconfig", "--context", ctx, *args, check=check, input_text=stdin)


def pod_name(d: Path, ctx: str, app: str) -> str:
    return kubectl(
        d, ctx, "-n", "sample", "get", "pod", "-l", f"app={app}", "-o", "jsonpath={.items[0].metadata.name}"
    ).stdout


def _verify_until_both_versions(d: Path, ctx: str) -> None:
    seen: collections.Counter[str] = collections.Counter()

    def both_versions() -> bool:
        run = subprocess.run(
            ["bash", "-c", VERIFY],
            capture_output=True,
            text=True,
            env={**_env(d), "CTX": ctx},
            timeout=60,
            check=False,
        )
        m = VERSION.search(run.stdout)
        seen[m.group(1) if m else f"rc={run.returncode} {run.stderr.strip()[-200:]}"] += 1
        return {"v1", "v2"} <= set(seen)

    try:
        wait_until(both_versions, timeout=60)
    except WaitTimeout as e:
        raise AssertionError(f"{ctx}: {seen}") from e


def test_the_guides_verify_step_with_kubectl_exec_from_both_clusters(lab_dir: Path) -> None:
    for ctx in ("cluster1", "cluster2"):
        _verify_until_both_versions(lab_dir, ctx)


def test_exec_exit_code_stdin_and_tty(lab_dir: Path) -> None:
    curl = pod_name(lab_dir, "cluster1", "curl")
    base = ["-n", "sample", "-c", "curl", curl]
    # kubectl exits with the command's exit code (the status channel's ExitCode cause)
    three = kubectl(lab_dir, "cluster1", "exec", *base, "--", "sh", "-c", "exit 3", check=False)
    assert three.returncode == 3, three.stderr
    ok = kubectl(lab_dir, "cluster1", "exec", *base, "--", "sh", "-c", "echo out; echo err >&2")
    assert ok.stdout == "out\n" and ok.stderr == "err\n"
    # stdin piped through `kubectl exec -i` arrives, and its end closes the command's stdin
    text = "line one\nline two\n" * 100
    piped = kubectl(
        lab_dir, "cluster1", "exec", "-i", *base, "--", "sh", "-c", "wc -l; cat >/dev/null", stdin=text
    )
    assert piped.stdout.strip() == "200"
    echoed = kubectl(lab_dir, "cluster1", "exec", "-i", *base, "--", "cat", stdin="héllo\n")
    assert echoed.stdout == "héllo\n"
    # the command runs in the pod: its hostname is the pod's network namespace's interface address
    ip = kubectl(
        lab_dir, "cluster1", "-n", "sample", "get", "pod", curl, "-o", "jsonpath={.status.podIP}"
    ).stdout
    addrs = kubectl(lab_dir, "cluster1", "exec", *base, "--", "ip", "-o", "-4", "addr").stdout
    assert f"inet {ip}/" in addrs
    # a terminal: -t allocates one (the command sees a tty), output comes back on stdout
    it = f"kubectl --context cluster1 exec -it -n sample -c curl {curl} -- sh -c 'tty; exit 4'"
    tty = subprocess.run(
        ["script", "-qec", it, "/dev/null"],
        capture_output=True, text=True, env=_env(lab_dir), timeout=60, check=False,
    )  # fmt: skip
    assert "/dev/pts/" in tty.stdout and tty.returncode == 4, (tty.stdout, tty.stderr)
    # a client that goes away ends the command it started (its process group), as a runtime does
    held = subprocess.Popen(
        ["kubectl", "--context", "cluster1", "exec", "-n", "sample", "-c", "curl", curl, "--",
         "sh", "-c", "echo $$; sleep 300 & wait"],
        stdout=subprocess.PIPE, env=_env(lab_dir),
    )  # fmt: skip
    assert held.stdout is not None
    pid = int(held.stdout.readline())
    assert labnode.alive(pid)
    held.terminate()
    held.wait(10)
    wait_until(lambda: not labnode.alive(pid), timeout=20, what="the exec'd shell ended")
    # what is refused says why
    bad = kubectl(lab_dir, "cluster1", "exec", "-n", "sample", "-c", "nope", curl, "--", "true", check=False)
    assert "container nope is not valid for pod" in bad.stderr


def test_logs_follow_shows_the_requests_and_attach_streams_output(lab_dir: Path) -> None:
    hello = pod_name(lab_dir, "cluster2", "helloworld")
    follow = subprocess.Popen(
        [
            "kubectl",
            "--context",
            "cluster2",
            "logs",
            "-f",
            "-n",
            "sample",
            "-c",
            "helloworld",
            hello,
            "--tail=0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(lab_dir),
    )
    seen: list[bytes] = []
    threading.Thread(target=lambda: seen.extend(iter(follow.stdout.readline, b"")), daemon=True).start()  # type: ignore[union-attr]
    curl = pod_name(lab_dir, "cluster1", "curl")
    try:

        def logged() -> bool:
            kubectl(
                lab_dir,
                "cluster1",
                "exec",
                "-n",
                "sample",
                "-c",
                "curl",
                curl,
                "--",
                "curl",
                "-sS",
                "helloworld.sample:5000/hello",
            )
            return any(
                b"GET /hello" in ln and b"spiffe://cluster.local/ns/sample/sa/curl" in ln for ln in seen
            )

        try:
            wait_until(logged, timeout=60)
        except WaitTimeout as e:
            raise AssertionError(f"followed: {seen[-5:]}") from e
    finally:
        follow.terminate()
        follow.wait(10)
    # attach: the container's output from now on (no stdin: the lab's containers have none); the
    # app logs to stderr, which kubectl attach writes to its own stderr
    attach = subprocess.Popen(
        ["kubectl", "--context", "cluster2", "attach", "-n", "sample", "-c", "helloworld", hello],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_env(lab_dir),
    )
    attached: list[bytes] = []
    threading.Thread(target=lambda: attached.extend(iter(attach.stdout.readline, b"")), daemon=True).start()  # type: ignore[union-attr]
    try:

        def streamed() -> bool:
            kubectl(
                lab_dir,
                "cluster1",
                "exec",
                "-n",
                "sample",
                "-c",
                "curl",
                curl,
                "--",
                "curl",
                "-sS",
                "helloworld.sample:5000/hello",
            )
            return any(b"GET /hello" in ln for ln in attached)

        try:
            wait_until(streamed, timeout=60)
        except WaitTimeout as e:
            raise AssertionError(f"attached: {attached[-5:]}") from e
    finally:
        attach.terminate()
        attach.wait(10)


def test_port_forward_to_the_control_planes_monitoring_port(lab_dir: Path) -> None:
    istiod = kubectl(
        lab_dir, "cluster1", "-n", "istio-system", "get", "pod", "-l", "app=istiod",
        "-o", "jsonpath={.items[0].metadata.name}",
    ).stdout  # fmt: skip
    pf = subprocess.Popen(
        ["kubectl", "--context", "cluster1", "-n", "istio-system", "port-forward", istiod, ":15014"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_env(lab_dir),
    )
    lines: list[bytes] = []
    threading.Thread(target=lambda: lines.extend(iter(pf.stdout.readline, b"")), daemon=True).start()  # type: ignore[union-attr]
    try:
        local = wait_until(
            lambda: next(
                (int(m[1]) for ln in lines if (m := re.search(rb"127\.0\.0\.1:(\d+) ->", ln))), None
            ),
            timeout=30,
            what="kubectl port-forward listening",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/metrics", timeout=10) as r:
            body = r.read().decode()
        assert r.status == 200 and "# TYPE" in body
    finally:
        pf.terminate()
        pf.wait(10)
