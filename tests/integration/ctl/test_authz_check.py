"""`meshplane x authz check POD` against a dev cluster: the real command lists the policies that
apply to the pod (its namespace's, selected by its labels, and the root namespace's) as istioctl's
table, the Envoy RBAC they become with -o json, and warns about invalid ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from meshplane.installer import crds
from tests.support.clusters import ThreadedCluster, kubectl, unique

POLICIES = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: allow-sleep, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: helloworld}}}}
  rules:
  - from: [{{source: {{principals: ["cluster.local/ns/sample/sa/sleep"]}}}}]
  - to: [{{operation: {{methods: ["GET"]}}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: deny-admin, namespace: {ns}}}
spec:
  action: DENY
  rules:
  - to: [{{operation: {{paths: ["/admin"]}}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: other-app, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: other}}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: broken, namespace: {ns}}}
spec:
  rules:
  - when: [{{key: source.color, values: [red]}}]
"""
POD = """
apiVersion: v1
kind: Pod
metadata: {{name: helloworld-1, namespace: {ns}, labels: {{app: helloworld}}}}
spec:
  containers: [{{name: app, image: docker.io/curlimages/curl:8.11.1}}]
"""


def _meshplane(kc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshplane", *args, "--kubeconfig", str(kc)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_authz_check_lists_the_policies_of_a_pod_and_their_rbac(
    cluster: ThreadedCluster, tmp_path: Path
) -> None:
    kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    ns = unique("sample")
    kubectl(kc, "create", "namespace", ns)
    # the CRDs, as install renders them
    kubectl(kc, "apply", "-f", "-", input_text=yaml.safe_dump_all(crds.all_crds()))
    kubectl(kc, "apply", "-f", "-", input_text=POD.format(ns=ns))
    kubectl(kc, "apply", "-f", "-", input_text=POLICIES.format(ns=ns))

    done = _meshplane(kc, "x", "authz", "check", f"helloworld-1.{ns}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ACTION", "AuthorizationPolicy", "RULES"]
    assert sorted(ln.split() for ln in lines[1:]) == [["ALLOW", f"allow-sleep.{ns}", "2"],
                                                    ["DENY", f"deny-admin.{ns}", "1"]]  # fmt: skip
    assert f"AuthorizationPolicy {ns}/broken: spec.rules[0].when[0].key: unknown attribute" in done.stderr

    as_json = json.loads(_meshplane(kc, "x", "authz", "check", "helloworld-1", "-n", ns, "-o", "json").stdout)
    http = as_json["httpFilters"]
    assert [f["name"] for f in http] == ["envoy.filters.http.rbac"] * 2
    assert [f["typedConfig"]["rules"].get("action", "ALLOW") for f in http] == ["DENY", "ALLOW"]
    assert sorted(http[1]["typedConfig"]["rules"]["policies"]) == [
        f"ns[{ns}]-policy[allow-sleep]-rule[0]", f"ns[{ns}]-policy[allow-sleep]-rule[1]"]  # fmt: skip
    # on TCP the ALLOW rule that needs HTTP (methods) is gone; the DENY one denies every connection
    tcp = {
        f["typedConfig"]["rules"].get("action", "ALLOW"): f["typedConfig"]["rules"]
        for f in as_json["tcpFilters"]
    }
    assert sorted(tcp["ALLOW"]["policies"]) == [f"ns[{ns}]-policy[allow-sleep]-rule[0]"]

    missing = _meshplane(kc, "x", "authz", "check", "nope", "-n", ns)
    assert missing.returncode == 1 and f"Error: pod {ns}/nope:" in missing.stderr
