"""The real kubectl (1.32) against the dev cluster, unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.support import clusters
from tests.support.clusters import kubectl, kubectl_json

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
        env:
        - name: MODE
          value: {mode}
      - name: sidecar
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector: {{app: web}}
  ports:
  - name: http
    port: 80
    targetPort: 8080
"""


def test_get_namespaces_table(kubeconfig_path: Path) -> None:
    out = kubectl(kubeconfig_path, "get", "ns").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows["default"] == "Active" and "kube-system" in rows


def test_output_formats(kubeconfig_path: Path) -> None:
    as_json = kubectl_json(kubeconfig_path, "get", "svc", "kubernetes", "-n", "default")
    assert as_json["spec"]["clusterIP"] == "10.96.0.1"
    as_yaml = yaml.safe_load(kubectl(kubeconfig_path, "get", "ns", "default", "-o", "yaml").stdout)
    assert as_yaml["kind"] == "Namespace" and as_yaml["status"]["phase"] == "Active"
    jp = kubectl(kubeconfig_path, "get", "ns", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    assert "kube-public" in jp


def test_apply_twice_changes_nothing_then_updates(kubeconfig_path: Path, ns: str) -> None:
    manifest = MANIFEST.format(ns=ns, mode="a")
    first = kubectl(kubeconfig_path, "apply", "-f", "-", input_text=manifest).stdout
    assert "configmap/settings created" in first and "deployment.apps/web created" in first
    before = kubectl_json(kubeconfig_path, "get", "deploy,cm,svc", "-n", ns)
    again = kubectl(kubeconfig_path, "apply", "-f", "-", input_text=manifest).stdout
    assert again.count("unchanged") == 3, again
    after = kubectl_json(kubeconfig_path, "get", "deploy,cm,svc", "-n", ns)
    rv = [i["metadata"]["resourceVersion"] for i in before["items"]]
    assert rv == [i["metadata"]["resourceVersion"] for i in after["items"]]
    # a changed env value in one container: strategic merge keeps both containers
    third = kubectl(kubeconfig_path, "apply", "-f", "-", input_text=MANIFEST.format(ns=ns, mode="b")).stdout
    assert "deployment.apps/web configured" in third
    dep = kubectl_json(kubeconfig_path, "get", "deploy", "web", "-n", ns)
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "sidecar"]
    assert containers[0]["env"] == [{"name": "MODE", "value": "b"}]
    assert dep["metadata"]["generation"] == 2


def test_apply_dry_run_server_writes_nothing(kubeconfig_path: Path, ns: str) -> None:
    out = kubectl(
        kubeconfig_path, "apply", "--dry-run=server", "-f", "-", input_text=MANIFEST.format(ns=ns, mode="a")
    ).stdout
    assert "(server dry run)" in out
    got = kubectl(kubeconfig_path, "get", "cm", "settings", "-n", ns, check=False)
    assert got.returncode != 0 and "NotFound" in got.stderr


def test_create_label_annotate_patch_delete(kubeconfig_path: Path, ns: str) -> None:
    kubectl(
        kubeconfig_path,
        "create",
        "-f",
        "-",
        input_text=(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c1, namespace: {ns}}}\ndata: {{x: '1'}}\n"
        ),
    )
    kubectl(kubeconfig_path, "label", "cm", "c1", "-n", ns, "team=blue")
    kubectl(kubeconfig_path, "annotate", "cm", "c1", "-n", ns, "note=hi")
    kubectl(kubeconfig_path, "patch", "cm", "c1", "-n", ns, "-p", '{"data":{"y":"2"}}')
    kubectl(kubeconfig_path, "patch", "cm", "c1", "-n", ns, "--type", "merge", "-p", '{"data":{"x":null}}')
    kubectl(
        kubeconfig_path,
        "patch",
        "cm",
        "c1",
        "-n",
        ns,
        "--type",
        "json",
        "-p",
        '[{"op":"add","path":"/data/z","value":"3"}]',
    )
    got = kubectl_json(kubeconfig_path, "get", "cm", "-n", ns, "-l", "team=blue")["items"]
    assert len(got) == 1
    assert got[0]["data"] == {"y": "2", "z": "3"}
    assert got[0]["metadata"]["annotations"]["note"] == "hi"
    out = kubectl(kubeconfig_path, "delete", "cm", "c1", "-n", ns).stdout
    assert 'configmap "c1" deleted' in out
    kubectl(kubeconfig_path, "wait", "--for=delete", "cm/c1", "-n", ns, "--timeout=10s")


def test_describe_and_wait(kubeconfig_path: Path, ns: str) -> None:
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=MANIFEST.format(ns=ns, mode="a"))
    out = kubectl(kubeconfig_path, "describe", "svc", "web", "-n", ns).stdout
    assert "Name:" in out and "web" in out and "TargetPort:" in out and "8080/TCP" in out
    kubectl(
        kubeconfig_path, "wait", "--for=jsonpath={.spec.replicas}=1", "deploy/web", "-n", ns, "--timeout=10s"
    )


def test_server_side_errors_reach_kubectl(kubeconfig_path: Path, ns: str) -> None:
    bad = kubectl(kubeconfig_path, "get", "cm", "missing", "-n", ns, check=False)
    assert bad.returncode == 1 and 'configmaps "missing" not found' in bad.stderr
    dup = kubectl(
        kubeconfig_path,
        "create",
        "-f",
        "-",
        check=False,
        input_text=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n",
    )
    assert dup.returncode == 1 and "AlreadyExists" in dup.stderr


def test_kubeconfig_names(cluster: clusters.ThreadedCluster) -> None:
    cfg = cluster.kubeconfig
    assert cfg["current-context"] == "test"
    assert cfg["clusters"][0]["name"] == cfg["users"][0]["name"] == cfg["contexts"][0]["name"] == "test"
    assert cfg["clusters"][0]["cluster"]["certificate-authority-data"]
    assert cfg["users"][0]["user"]["token"] == cluster.cluster.admin_token
    assert json.dumps(cfg).count(cluster.cluster.url) == 1


def test_typed_create_commands_send_protobuf(kubeconfig_path: Path, ns: str) -> None:
    """kubectl's typed clients POST protobuf; the dev cluster decodes it."""
    kubectl(kubeconfig_path, "create", "secret", "generic", "s1", "-n", ns, "--from-literal=k=v", "--type=t1")
    kubectl(kubeconfig_path, "create", "serviceaccount", "sa1", "-n", ns)
    kubectl(kubeconfig_path, "create", "service", "clusterip", "svc1", "-n", ns, "--tcp=80:8080")
    kubectl(kubeconfig_path, "create", "deployment", "d1", "-n", ns, "--image=nginx:1", "--replicas=2")
    kubectl(kubeconfig_path, "create", "role", "r1", "-n", ns, "--verb=get", "--resource=pods")
    kubectl(
        kubeconfig_path,
        "create",
        "rolebinding",
        "rb1",
        "-n",
        ns,
        "--role=r1",
        "--serviceaccount",
        f"{ns}:sa1",
    )
    secret = kubectl_json(kubeconfig_path, "get", "secret", "s1", "-n", ns)
    assert secret["type"] == "t1" and secret["data"] == {"k": "dg=="}
    svc = kubectl_json(kubeconfig_path, "get", "svc", "svc1", "-n", ns)
    assert svc["spec"]["ports"][0]["targetPort"] == 8080 and svc["spec"]["clusterIP"].startswith("10.96.")
    dep = kubectl_json(kubeconfig_path, "get", "deploy", "d1", "-n", ns)
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    rb = kubectl_json(kubeconfig_path, "get", "rolebinding", "rb1", "-n", ns)
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "sa1", "namespace": ns}]
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r1"}
