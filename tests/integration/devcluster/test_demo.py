"""`meshplane demo`: two clusters, a merged kubeconfig, kubectl get ns on both, stopped by PID."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import clusters


def test_demo_runs_two_clusters_and_stops_them(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(clusters.ROOT / "src"), COLUMNS="200")
    r = subprocess.run(
        [sys.executable, "-m", "meshplane", "demo", "--lab-dir", str(tmp_path / "lab")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr + r.stdout
    out = r.stdout
    assert "contexts: cluster1, cluster2" in out
    assert out.count("kube-system") == 2 and "$ kubectl --context cluster2 get ns" in out
    cfg = yaml.safe_load((tmp_path / "lab" / "kubeconfig").read_text())
    assert [c["name"] for c in cfg["contexts"]] == ["cluster1", "cluster2"]
    token = cfg["users"][0]["user"]["token"]
    assert token not in out  # the printed kubeconfig elides credentials
    pids = [int(p) for p in re.findall(r"stopped cluster\d \(pid (\d+)\)", out)]
    assert len(pids) == 2
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
