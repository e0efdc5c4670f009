"""Two in-process dev clusters (contexts cluster1 and cluster2) behind one kubeconfig, driven with
the meshplane CLI (a subprocess) and kubectl; the IstioOperator files of the two-cluster install.
The `env` fixture is in tests/integration/installer/conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshplane.lab import guide
from tests.support import clusters

ROOT = clusters.ROOT

# The guide's own install files (the lab runs them verbatim); cluster2's takes the address by format().
CLUSTER1_YAML = guide.CLUSTER1_YAML
CLUSTER2_YAML = guide.CLUSTER2_YAML.replace("${DISCOVERY_ADDRESS}", "{addr}")


@dataclass
class Env:
    c1: clusters.ThreadedCluster
    c2: clusters.ThreadedCluster
    kubeconfig: Path
    workdir: Path

    def env(self) -> dict[str, str]:
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": str(ROOT / "src"),
            "MESHPLANE_LOG_LEVEL": "WARNING",
        }

    def meshplane(
        self, *args: str, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "meshplane", *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return clusters.kubectl(self.kubeconfig, *args, input_text=stdin, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def file(self, name: str, text: str) -> str:
        p = self.workdir / name
        p.write_text(text)
        return str(p)


LABELLED_KINDS = (
    "deployments,services,configmaps,serviceaccounts,roles,rolebindings,endpointslices,secrets,pods",
    "clusterroles,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations,"
    "customresourcedefinitions",
)


def labelled(e: Env, context: str) -> dict[str, str]:
    """Every object carrying operator.istio.io/component in a cluster: `Kind ns/name` → resourceVersion."""
    out: dict[str, str] = {}
    for kinds in LABELLED_KINDS:
        items = e.json("--context", context, "get", kinds, "-A", "-l", "operator.istio.io/component")["items"]
        for o in items:
            m = o["metadata"]
            key = (
                f"{o['kind']} {m['namespace']}/{m['name']}"
                if m.get("namespace")
                else f"{o['kind']} {m['name']}"
            )
            out[key] = m["resourceVersion"]
    return out
