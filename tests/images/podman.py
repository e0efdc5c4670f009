"""podman for the image tests and bench/bench_images.py: the engine's settings (images/
containers-conf.sh), whether containers can run here, `make images` from a clean copy of the tree,
and reading images back (inspect, sizes, `podman save`).

Everything runs the real podman (Debian's podman, buildah and runc); containers are removed by
the ID they were started with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
TEST_HUB = "localhost/meshplane-test"


def env() -> dict[str, str]:
    """The environment podman runs with: CONTAINERS_CONF from images/containers-conf.sh."""
    conf = subprocess.run(
        [str(IMAGES / "containers-conf.sh")], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    return {**os.environ, "CONTAINERS_CONF": conf}


PROBE = "localhost/meshplane-probe:true"


def unusable() -> str | None:
    """Why podman cannot run containers on this machine, or None when it can: `podman info`, then
    `podman run` of a two-megabyte image holding the host's /usr/bin/true and the libraries it
    links (made with `podman import`, no registry)."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman buildah runc debootstrap)"
    e = env()
    p = subprocess.run(["podman", "info"], capture_output=True, text=True, env=e, timeout=60, check=False)
    if p.returncode != 0:
        return f"podman cannot run here: `podman info` failed: {p.stderr.strip()[-500:]}"
    files = ["/usr/bin/true"]
    ldd = subprocess.run(["ldd", "/usr/bin/true"], capture_output=True, text=True, timeout=30, check=False)
    files += [w for line in ldd.stdout.splitlines() for w in line.split() if w.startswith("/")]
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "probe.tar"
        subprocess.run(["tar", "-chf", str(tar), *files], capture_output=True, timeout=60, check=True)
        subprocess.run(
            ["podman", "import", "--quiet", str(tar), PROBE],
            capture_output=True,
            env=e,
            timeout=60,
            check=True,
        )
    try:
        p = subprocess.run(
            ["podman", "run", "--rm", "--network", "none", PROBE, "/usr/bin/true"],
            capture_output=True, text=True, env=e, timeout=120, check=False,
        )  # fmt: skip
    finally:
        subprocess.run(["podman", "rmi", PROBE], capture_output=True, env=e, timeout=60, check=False)
    if p.returncode != 0:
        return f"podman cannot run containers here: `podman run` failed: {p.stderr.strip()[-500:]}"
    return None


def podman(
    *args: str, timeout: float = 120, check: bool = True, **kw: Any
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=env(), timeout=timeout, check=False, **kw
    )
    if check and p.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


@dataclass(frozen=True)
class Built:
    hub: str
    tag: str
    set_line: str  # the `--set values.global.hub=... --set values.global.tag=...` line make printed
    seconds: float  # wall time of `make images`
    log: str

    def image(self, name: str) -> str:
        return f"{self.hub}/{name}:{self.tag}"

    @property
    def set_flags(self) -> list[str]:
        return self.set_line.split()


def clean_copy(dest: Path) -> Path:
    """The tree as git sees it (tracked and new unignored files; no venv, caches or egg-info)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def make_images(tree: Path, hub: str = TEST_HUB, timeout: float = 1200) -> Built:
    """`make images HUB=hub` in `tree`; the tag is the project version (make's default)."""
    start = time.monotonic()
    p = subprocess.run(
        ["make", "--no-print-directory", "images", f"HUB={hub}"],
        cwd=tree, capture_output=True, text=True, env=env(), timeout=timeout, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - start
    if p.returncode != 0:
        raise AssertionError(f"make images failed ({p.returncode}):\n{p.stderr[-5000:]}")
    set_line = p.stdout.strip().splitlines()[-1]
    tag = set_line.rsplit("values.global.tag=", 1)[-1]
    return Built(hub, tag, set_line, seconds, p.stderr)


def inspect(image: str) -> dict[str, Any]:
    import json

    data: list[dict[str, Any]] = json.loads(podman("image", "inspect", image).stdout)
    return data[0]


def size(image: str) -> int:
    """Uncompressed size in bytes, as `podman image inspect` reports it."""
    return int(inspect(image)["Size"])


def compressed_size(image: str) -> int:
    """Bytes of `podman save IMAGE | gzip` (the default docker-archive tarball, gzip level 6)."""
    with subprocess.Popen(["podman", "save", image], stdout=subprocess.PIPE, env=env()) as proc:
        assert proc.stdout is not None
        gz = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip framing, as gzip(1)
        total = 0
        while chunk := proc.stdout.read(1 << 20):
            total += len(gz.compress(chunk))
        total += len(gz.flush())
    if proc.returncode != 0:
        raise AssertionError(f"podman save {image} failed ({proc.returncode})")
    return total


def inspect_container(cid: str) -> dict[str, Any]:
    """The container's State (Running, ExitCode, ...)."""
    import json

    data: list[dict[str, Any]] = json.loads(podman("container", "inspect", cid).stdout)
    state: dict[str, Any] = data[0]["State"]
    return state


# The pilot Deployment's securityContext and mounts, as `podman run` options: uid/gid 1337, read-only
# root, all capabilities dropped, the `local-certs` emptyDir; host networking so it reaches a dev
# cluster on loopback, whose kubeconfig is mounted where the istio-kubeconfig Secret goes.
PILOT_KUBECONFIG = "/var/run/secrets/remote/config"


def pilot_opts(kubeconfig: Path, pod_name: str = "istiod-image-test") -> list[str]:
    return [
        "--network", "host", "--user", "1337:1337", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--tmpfs", "/var/run/secrets/istio-dns",
        "--volume", f"{kubeconfig}:{PILOT_KUBECONFIG}:ro",
        "--env", "POD_NAMESPACE=istio-system", "--env", f"POD_NAME={pod_name}",
    ]  # fmt: skip


def pilot_flags(ports: dict[str, int], cluster_id: str = "cluster1") -> list[str]:
    """`meshplane discovery` flags after the rendered args: the kubeconfig, loopback, our ports
    (keys xds, grpc, mon, hook)."""
    return [
        "--kubeconfig", PILOT_KUBECONFIG, "--cluster-id", cluster_id, "--bind-address", "127.0.0.1",
        "--xds-plaintext-port", str(ports["xds"]), "--secure-grpc-port", str(ports["grpc"]),
        "--monitoring-port", str(ports["mon"]), "--webhook-port", str(ports["hook"]),
    ]  # fmt: skip


def logs(cid: str) -> str:
    p = podman("logs", cid, check=False)
    return (p.stdout + p.stderr)[-4000:]


def remove(cid: str) -> None:
    podman("rm", "-f", "-t", "0", cid, check=False)
