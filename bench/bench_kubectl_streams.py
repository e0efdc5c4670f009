"""`kubectl exec` and `kubectl logs -f` against a lab cluster (issue 11), netns mode.

- exec round trip: `kubectl exec POD -c curl -- true` (kubectl start, discovery from its cache,
  the pod GET, the WebSocket upgrade through the dev cluster to the node's kubelet API, the
  command run in the pod's namespace, its exit status back), against `kubectl get pod POD` (the
  same kubectl start and cached discovery, one GET) as the floor kubectl itself costs.
- log follow latency: `kubectl logs -f` of a helloworld pod is running; a request is sent to the
  app (from the node to the pod's IP) and the time until kubectl prints the line the app logged
  for it (the app's logging, the node's CRI log pump, the kubelet API's follow, the dev cluster's
  proxy, kubectl).

A fresh `lab up` (no guide: plain pods, no sidecars) on free ranges. Needs root; not run by the
tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from tests.support import clusters

from bench.__main__ import machine
from bench.bench_lab import lab_up, meshplane

RUNS = 20
PODS = """
apiVersion: v1
kind: Pod
metadata: {name: curl, namespace: default}
spec:
  containers: [{name: curl, image: curlimages/curl}]
---
apiVersion: v1
kind: Pod
metadata: {name: hello, namespace: default}
spec:
  containers: [{name: helloworld, image: docker.io/istio/examples-helloworld-v1}]
"""


def _env(d: Path) -> dict[str, str]:
    home = d / ".kubectl-home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": str(d / "kubeconfig")}


def _timed(d: Path, *args: str) -> float:
    start = time.monotonic()
    subprocess.run(["kubectl", "--context", "cluster1", *args], env=_env(d), check=True, capture_output=True)
    return time.monotonic() - start


def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"{statistics.median(xs) * 1000:.0f} ms (p90 {xs[int(len(xs) * 0.9) - 1] * 1000:.0f} ms)"


def _follow_latencies(d: Path, ip: str) -> list[float]:
    follow = subprocess.Popen(
        ["kubectl", "--context", "cluster1", "logs", "-f", "hello", "--tail=0"],
        stdout=subprocess.PIPE,
        env=_env(d),
    )
    lines: list[tuple[float, bytes]] = []
    got = threading.Event()

    def read() -> None:
        assert follow.stdout is not None
        for line in iter(follow.stdout.readline, b""):
            lines.append((time.monotonic(), line))
            got.set()

    threading.Thread(target=read, daemon=True).start()
    out: list[float] = []
    try:
        # the first request also proves the follow is established; not measured
        while not got.is_set():
            urllib.request.urlopen(f"http://{ip}:5000/hello", timeout=5).read()
            got.wait(0.5)
        for _ in range(RUNS):
            got.clear()
            seen = len(lines)
            start = time.monotonic()
            urllib.request.urlopen(f"http://{ip}:5000/hello", timeout=5).read()
            if not got.wait(10):
                raise RuntimeError("kubectl logs -f printed nothing for a request")
            out.append(lines[seen][0] - start)
    finally:
        follow.terminate()
        follow.wait(10)
    return out


async def run() -> str:
    return await asyncio.to_thread(_run)


def _run() -> str:
    base = Path(tempfile.mkdtemp(prefix="mp-bench-streams-"))
    d = base / "lab"
    try:
        lab_up(d, "netns")
        kc = d / "kubeconfig"
        clusters.kubectl(kc, "--context", "cluster1", "apply", "-f", "-", input_text=PODS)
        clusters.kubectl(
            kc,
            "--context",
            "cluster1",
            "wait",
            "--for=condition=Ready",
            "pod/curl",
            "pod/hello",
            "--timeout=120s",
        )
        _timed(d, "exec", "curl", "--", "true")  # warm kubectl's discovery cache
        get = [_timed(d, "get", "pod", "curl") for _ in range(RUNS)]
        ex = [_timed(d, "exec", "curl", "-c", "curl", "--", "true") for _ in range(RUNS)]
        ip = clusters.kubectl(
            kc, "--context", "cluster1", "get", "pod", "hello", "-o", "jsonpath={.status.podIP}"
        ).stdout
        for _ in range(100):  # the app listens a moment after the pod is Ready (no readiness probe)
            try:
                urllib.request.urlopen(f"http://{ip}:5000/hello", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        follow = _follow_latencies(d, ip)
    finally:
        meshplane("lab", "down", "--dir", str(d))
        shutil.rmtree(base, ignore_errors=True)
    return "\n".join(
        [
            "## kubectl exec and logs -f in the lab (issue 11, bench/bench_kubectl_streams.py)",
            "",
            f"On {machine()}. netns mode, one lab cluster, plain pods (no sidecar); {RUNS} runs each, "
            "median (p90):",
            "",
            "| what | time |",
            "| --- | --- |",
            f"| `kubectl exec curl -c curl -- true` (round trip: exec → exit status) | {_ms(ex)} |",
            f"| `kubectl get pod curl` (kubectl start, cached discovery, one GET) | {_ms(get)} |",
            f"| `kubectl logs -f`: request sent → its log line printed by kubectl | {_ms(follow)} |",
            "",
            "The follower is woken by the node's log pump as it writes (containerlog); the exec "
            "figure includes kubectl's own start.",
        ]
    )
