"""`meshplane lab up|status|exec|down` as a user runs them: subprocesses, PIDs and ports checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import clusters, labnode, wait

SAMPLES = labnode.ROOT / "samples"


def lab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshplane", "lab", *args],
        capture_output=True,
        text=True,
        env=labnode.env(),
        timeout=timeout,
        check=False,
    )


def pids(directory: Path) -> dict[str, int]:
    state = json.loads((directory / "lab.json").read_text())
    return {f"{c}/{r}": p["pid"] for c, procs in state["clusters"].items() for r, p in procs.items()}


def test_up_status_exec_down(tmp_path: Path) -> None:
    base = labnode.address_base()
    d = tmp_path / "lab"
    pod_pids: list[int] = []
    try:
        first = lab("up", "--dir", str(d), "--address-base", str(base))
        assert first.returncode == 0, first.stderr
        assert (
            first.stdout.strip()
            == f"export KUBECONFIG={d / 'kubeconfig'} CTX_CLUSTER1=cluster1 CTX_CLUSTER2=cluster2"
        )
        kubeconfig = d / "kubeconfig"
        contexts = clusters.kubectl(kubeconfig, "config", "get-contexts", "-o", "name").stdout.split()
        assert sorted(contexts) == ["cluster1", "cluster2"]
        started = pids(d)
        assert len(started) == 4 and all(labnode.alive(p) for p in started.values())

        again = lab("up", "--dir", str(d))
        assert again.returncode == 0, again.stderr
        assert pids(d) == started  # everything reused

        k1: list[str] = ["--context", "cluster1", "-n", "sample"]
        clusters.kubectl(kubeconfig, "--context", "cluster1", "create", "namespace", "sample")
        hello = str(SAMPLES / "helloworld" / "helloworld.yaml")
        clusters.kubectl(kubeconfig, *k1, "apply", "-f", hello, "-l", "service=helloworld")
        clusters.kubectl(kubeconfig, *k1, "apply", "-f", hello, "-l", "version=v1")
        clusters.kubectl(kubeconfig, *k1, "apply", "-f", str(SAMPLES / "curl" / "curl.yaml"))
        clusters.kubectl(
            kubeconfig, *k1, "wait", "--for=condition=Available", "deploy", "--all", "--timeout=60s"
        )
        pods: list[dict[str, Any]] = clusters.kubectl_json(kubeconfig, *k1, "get", "pods")["items"]
        by_app = {p["metadata"]["labels"]["app"]: p for p in pods}
        hello_pod, curl_pod = by_app["helloworld"]["metadata"]["name"], by_app["curl"]["metadata"]["name"]
        node1 = d / "nodes" / "cluster1"
        app_pid = int((node1 / "pods/sample" / hello_pod / "pids/helloworld.pid").read_text().split()[0])

        # a node runtime killed with SIGKILL takes its pods' processes with it; `up` restarts it
        os.kill(started["cluster1/node"], signal.SIGKILL)
        wait.wait_until(lambda: not labnode.alive(app_pid), timeout=15, what="pod process exit")
        restarted = lab("up", "--dir", str(d))
        assert restarted.returncode == 0, restarted.stderr
        now = pids(d)
        assert now["cluster1/node"] != started["cluster1/node"]
        assert {k: v for k, v in now.items() if k != "cluster1/node"} == {
            k: v for k, v in started.items() if k != "cluster1/node"
        }
        clusters.kubectl(kubeconfig, *k1, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=60s")

        status = lab("status", "--dir", str(d))
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert any(hello_pod in ln and "1/1" in ln and "Running" in ln for ln in lines), status.stdout

        def exec_hello() -> subprocess.CompletedProcess[str] | None:
            out = lab(
                "exec", "--dir", str(d), "--context", "cluster1", "-n", "sample", curl_pod,
                "--", "curl", "-sS", "helloworld.sample:5000/hello",
            )  # fmt: skip
            return out if out.returncode == 0 else None

        got = wait.wait_until(exec_hello, timeout=20, what="lab exec answer")
        assert got.stdout == f"Hello version: v1, instance: {hello_pod}\n"
        bad = lab(
            "exec",
            "--dir",
            str(d),
            "--context",
            "cluster1",
            "-n",
            "sample",
            curl_pod,
            "--",
            "curl",
            "nope:1/",
        )
        assert bad.returncode == 7 and "curl: (7)" in bad.stderr
        usage = lab("exec", "--dir", str(d), "--context", "cluster1", "-n", "sample", curl_pod, "--", "ls")
        assert usage.returncode == 2
        pod_pids = [
            int(p.read_text().split()[0])
            for p in (d / "nodes").rglob("*.pid")
            if labnode.alive(int(p.read_text().split()[0]))
        ]
        assert len(pod_pids) == 2  # helloworld and curl in cluster1, after the node restart
    finally:
        down = lab("down", "--dir", str(d))
    assert down.returncode == 0, down.stderr
    everything = [*pids(d).values(), *pod_pids]
    assert not [p for p in everything if labnode.alive(p)]
    assert labnode.listening(f"127.{base}.") == [] and labnode.listening(f"127.{base + 1}.") == []
    ports = {
        json.loads((d / "lab.json").read_text())["clusters"][c]["api"]["port"]
        for c in ("cluster1", "cluster2")
    }
    assert not [s for s in labnode.listening("127.0.0.1") if int(s.rsplit(":", 1)[1]) in ports]
