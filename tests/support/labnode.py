"""A lab node runtime (a real `python -m meshplane lab node` subprocess) beside a dev cluster, and
helpers to inspect it (pods, pids, listening sockets). The fixtures are in tests/integration/lab/.

Each module gets its own random address plan (127.B.*) so that test runs never collide with a
lab, or another test run, on the same machine."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import clusters, wait

ROOT = clusters.ROOT


def address_base() -> int:
    return random.randrange(100, 250, 2)


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src"), MESHPLANE_LOG_LEVEL="INFO")


@dataclass
class LabNode:
    cluster: clusters.ThreadedCluster
    kubeconfig: Path
    dir: Path
    base: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pod_cidr(self) -> str:
        return f"127.{self.base}.1.0/24"

    @property
    def local_cidr(self) -> str:
        return f"127.{self.base + 1}.1.0/24"

    @property
    def lb_prefix(self) -> str:
        return f"127.{self.base}.3."

    @property
    def service_cidr(self) -> str:
        return f"127.{self.base}.10.0/24"

    @property
    def hosts(self) -> Path:
        return self.dir / "hosts"

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return clusters.kubectl(self.kubeconfig, *args, **kw)

    def get(self, *args: str) -> Any:
        return clusters.kubectl_json(self.kubeconfig, "get", *args)

    def pods(self, ns: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["pods", "-n", ns] + (["-l", selector] if selector else [])
        items: list[dict[str, Any]] = self.get(*args)["items"]
        return items

    def pod_dir(self, ns: str, name: str) -> Path:
        return self.dir / "pods" / ns / name

    def pid(self, ns: str, pod: str, container: str) -> int | None:
        try:
            return int((self.pod_dir(ns, pod) / "pids" / f"{container}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def apply(self, text: str, ns: str) -> None:
        self.kubectl("apply", "-n", ns, "-f", "-", input_text=text)


def ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def listening(prefix: str) -> list[str]:
    """Listening TCP sockets (ip:port) whose IPv4 address starts with `prefix`."""
    out = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] != "0A":  # LISTEN
            continue
        hex_ip, hex_port = fields[1].split(":")
        ip = ".".join(str(int(hex_ip[i : i + 2], 16)) for i in (6, 4, 2, 0))
        if ip.startswith(prefix):
            out.append(f"{ip}:{int(hex_port, 16)}")
    return out


def start_node(
    kubeconfig: Path, directory: Path, base: int, name: str = "cluster1", *extra: str
) -> tuple[subprocess.Popen[bytes], Path]:
    log = directory.parent / f"{directory.name}.log"
    out = directory.parent / f"{directory.name}.out"
    args = [
        sys.executable, "-m", "meshplane", "lab", "node",
        "--name", name, "--kubeconfig", str(kubeconfig), "--dir", str(directory),
        "--pod-cidr", f"127.{base}.1.0/24", "--lb-cidr", f"127.{base}.3.0/24",
        "--lb-claims", str(directory.parent / "lb-claims"), "--zone", "zone-a",
        *extra,
    ]  # fmt: skip
    with open(out, "wb") as o, open(log, "ab") as e:
        proc = subprocess.Popen(args, stdout=o, stderr=e, env=env(), start_new_session=True)
    try:
        wait.wait_until(
            lambda: out.read_text().startswith("ready") or proc.poll() is not None,
            timeout=60,
            what="node ready",
        )
    except BaseException:
        stop(proc)
        raise
    if proc.poll() is not None:
        raise AssertionError(f"node runtime exited: {log.read_text()[-3000:]}")
    return proc, log


def stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def pid_of(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def dump(node: LabNode, ns: str) -> str:
    """Context for a failed assertion: the namespace's pods and the node's log tail."""
    pods = json.dumps(
        [{"name": p["metadata"]["name"], "status": p.get("status")} for p in node.pods(ns)], indent=1
    )
    return f"pods: {pods[-4000:]}\nnode log: {node.log.read_text()[-4000:]}"
