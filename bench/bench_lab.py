"""The lab in its two network modes, and the cost of the transparent data path (issue 10).

- `lab up` wall time, then 10 plain pods (helloworld, no sidecar) from `kubectl apply` to the
  Deployment rolled out (`kubectl rollout status`: every replica available), in netns mode (a
  network namespace, veth, routes and resolver files per
  pod) and in loopback mode. Fresh lab folders; netns mode on free 198.19.x ranges.
- After the guide and verify in netns mode: `wrk` (Debian's wrk, in the pod's network namespace)
  for 10 s with 8 connections, from cluster1's sleep pod to `helloworld.sample:5000/hello` (the
  real client path: captured by the sleep pod's sidecar, mTLS to the helloworld pod's sidecar,
  which forwards to the app on 127.0.0.1), against the same app reached directly on 127.0.0.1
  inside its own pod (no sidecar). The app is the lab's Python helloworld, the same in both runs.

Needs root, `wrk` and `curl`; not run by the tests.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.test_lab_guide import free_ranges
from tests.support import clusters, labnode

from meshplane.lab import podexec
from meshplane.lab.network import plan as netplan

PODS = 10
DEPLOYMENT = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hw, namespace: default}}
spec:
  replicas: {PODS}
  selector: {{matchLabels: {{app: hw}}}}
  template:
    metadata: {{labels: {{app: hw}}}}
    spec:
      containers:
      - {{name: hw, image: docker.io/istio/examples-helloworld-v1, ports: [{{containerPort: 5000}}]}}
"""


def meshplane(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "meshplane", *args],
        capture_output=True,
        text=True,
        env=labnode.env(),
        timeout=timeout,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"meshplane {' '.join(args)}: {r.stdout[-2000:]} {r.stderr[-2000:]}")
    return r


def lab_up(d: Path, mode: str) -> float:
    where = ["--address-base", "202"] if mode == "loopback" else free_ranges()
    start = time.monotonic()
    meshplane("lab", "up", "--dir", str(d), "--network", mode, *where)
    return time.monotonic() - start


def pods_ready(d: Path) -> float:
    kubeconfig = d / "kubeconfig"
    start = time.monotonic()
    clusters.kubectl(kubeconfig, "--context", "cluster1", "apply", "-f", "-", input_text=DEPLOYMENT)
    clusters.kubectl(
        kubeconfig,
        "--context",
        "cluster1",
        "rollout",
        "status",
        "deployment/hw",
        "--timeout=300s",
    )
    return time.monotonic() - start


def wrk(d: Path, app: str, container: str, url: str) -> tuple[float, str]:
    """(requests/s, p99) of wrk run in the sample pod `app` of cluster1."""
    kubeconfig = d / "kubeconfig"
    out = clusters.kubectl(
        kubeconfig, "--context", "cluster1", "-n", "sample", "get", "pod", "-l", f"app={app}", "-o", "json"
    ).stdout
    pod = json.loads(out)["items"][0]
    argv = podexec.argv(
        netplan.load(d / "network.json"), pod, container, ["wrk", "-t1", "-c8", "-d10s", "--latency", url]
    )
    r = subprocess.run(argv, capture_output=True, text=True, env=podexec.env(pod), timeout=120, check=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", r.stdout).group(1)  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} errors: {r.stdout}")
    return rps, p99


async def run() -> str:
    if shutil.which("wrk") is None:
        return "## Lab network modes\n\nnot run: `wrk` is not installed (Debian: apt-get install wrk)\n"
    return await asyncio.to_thread(_run)


def _run() -> str:
    rows: dict[str, tuple[float, float]] = {}
    load: list[tuple[str, float, str]] = []
    for mode in ("netns", "loopback"):
        d = Path(tempfile.mkdtemp(prefix=f"bench-lab-{mode}-")) / "lab"
        try:
            up = lab_up(d, mode)
            rows[mode] = (up, pods_ready(d))
            if mode == "netns":
                meshplane("lab", "guide", "--dir", str(d))
                meshplane("lab", "verify", "--dir", str(d))
                load.append(
                    (
                        "client → sidecar → sidecar → app",
                        *wrk(d, "sleep", "sleep", "http://helloworld.sample:5000/hello"),
                    )
                )
                load.append(
                    (
                        "direct to the app (127.0.0.1, no sidecar)",
                        *wrk(d, "helloworld", "helloworld", "http://127.0.0.1:5000/hello"),
                    )
                )
        finally:
            meshplane("lab", "down", "--dir", str(d))
    lines = [
        "## Lab network modes (issue 10)",
        "",
        f"`lab up` and {PODS} plain pods (helloworld, no sidecar) to all ready "
        "(`kubectl rollout status`), fresh lab each:",
        "",
        "| mode | lab up | 10 pods ready | per pod |",
        "|---|---|---|---|",
    ]
    for mode, (up, ready) in rows.items():
        lines.append(f"| {mode} | {up:.1f} s | {ready:.1f} s | {ready / PODS:.2f} s |")
    lines += [
        "",
        "Through the transparent data path in netns mode (wrk -t1 -c8 -d10s, in the pod's namespace; "
        "the lab's Python helloworld app in both rows):",
        "",
        "| path | requests/s | p99 |",
        "|---|---|---|",
        *(f"| {path} | {rps:.0f} | {p99} |" for path, rps, p99 in load),
    ]
    return "\n".join(lines) + "\n"
