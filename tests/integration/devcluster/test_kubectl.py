"""The real kubectl (1.32) against the dev cluster, unchanged."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from pathlib import Path

import yaml

from tests.support import clusters, wait
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


def test_get_watch_and_wait_for_condition(kubeconfig_path: Path, ns: str) -> None:
    kubectl(kubeconfig_path, "create", "configmap", "watched", "-n", ns, "--from-literal=a=1")
    home = kubeconfig_path.parent / ".kubectl-home"
    env = {"HOME": str(home), "KUBECONFIG": str(kubeconfig_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [clusters.KUBECTL, "get", "cm", "watched", "-n", ns, "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    out_stream = proc.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(out_stream.readline, "")), daemon=True)
    reader.start()
    try:
        wait.wait_until(lambda: len(lines) >= 2, what="initial watch output")
        kubectl(kubeconfig_path, "patch", "cm", "watched", "-n", ns, "-p", '{"data":{"b":"2"}}')
        wait.wait_until(lambda: len(lines) >= 3, what="watch update line")
    finally:
        proc.kill()
        proc.wait(10)
    assert lines[0].split() == ["NAME", "DATA", "AGE"]
    assert lines[1].split()[:2] == ["watched", "1"] and lines[2].split()[:2] == ["watched", "2"]
    kubectl(
        kubeconfig_path,
        "create",
        "-f",
        "-",
        input_text=(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: w, namespace: {ns}}}\n"
            "spec: {containers: [{name: c, image: x}]}\n"
        ),
    )
    waiter = subprocess.Popen(
        [clusters.KUBECTL, "wait", "--for=condition=Ready", "pod/w", "-n", ns, "--timeout=20s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        kubectl(
            kubeconfig_path,
            "patch",
            "pod",
            "w",
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}',
        )
        out, _ = waiter.communicate(timeout=30)
    finally:
        waiter.kill()
    assert waiter.returncode == 0 and "condition met" in out


def test_describe_lists_events(kubeconfig_path: Path, ns: str) -> None:
    kubectl(
        kubeconfig_path,
        "create",
        "-f",
        "-",
        input_text=(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: ev, namespace: {ns}}}\n"
            "spec: {containers: [{name: c, image: x}]}\n"
        ),
    )
    uid = kubectl_json(kubeconfig_path, "get", "pod", "ev", "-n", ns)["metadata"]["uid"]
    kubectl(
        kubeconfig_path,
        "create",
        "-f",
        "-",
        input_text=(
            f"apiVersion: v1\nkind: Event\nmetadata: {{name: ev.1, namespace: {ns}}}\n"
            f"involvedObject: {{kind: Pod, name: ev, namespace: {ns}, uid: '{uid}', apiVersion: v1}}\n"
            "reason: Scheduled\nmessage: assigned to node1\ntype: Normal\n"
            "source: {component: default-scheduler}\n"
        ),
    )
    described = kubectl(kubeconfig_path, "describe", "pod", "ev", "-n", ns).stdout
    assert "Scheduled" in described and "assigned to node1" in described
    table = kubectl(kubeconfig_path, "get", "events", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "pod/ev" in table[1]


def test_reapply_removes_what_the_manifest_dropped(kubeconfig_path: Path, ns: str) -> None:
    """kubectl's three-way strategic merge patch ($patch: delete, $setElementOrder) as Istio's
    installer re-applies manifests; also the extra kinds istiod's chart renders (PDB, HPA)."""
    full = MANIFEST.format(ns=ns, mode="a")
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=full)
    slim = full.replace("      - name: sidecar\n        image: busybox:1.36\n", "").replace(
        "        env:\n        - name: MODE\n          value: a\n", ""
    )
    assert slim != full
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=slim)
    dep = kubectl_json(kubeconfig_path, "get", "deploy", "web", "-n", ns)
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"] and "env" not in containers[0]
    extra = f"""\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: {ns}}}
spec: {{minAvailable: 1, selector: {{matchLabels: {{app: web}}}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web, namespace: {ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}
"""
    out = kubectl(kubeconfig_path, "apply", "-f", "-", input_text=extra).stdout
    assert "poddisruptionbudget.policy/web created" in out
    assert "horizontalpodautoscaler.autoscaling/web created" in out
    before = kubectl_json(kubeconfig_path, "get", "pdb,hpa", "-n", ns)["items"]
    again = kubectl(kubeconfig_path, "apply", "-f", "-", input_text=extra).stdout
    # kubectl always sends the PDB selector (patchStrategy replace), as against any API server; the
    # server sees a no-op and writes nothing
    assert "horizontalpodautoscaler.autoscaling/web unchanged" in again
    after = kubectl_json(kubeconfig_path, "get", "pdb,hpa", "-n", ns)["items"]
    assert [o["metadata"]["resourceVersion"] for o in before] == [
        o["metadata"]["resourceVersion"] for o in after
    ]


def test_kubectl_field_validation(kubeconfig_path: Path, ns: str) -> None:
    bad = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: fv, namespace: {ns}}}\nbogus: 1\n"
    strict = kubectl(kubeconfig_path, "apply", "-f", "-", input_text=bad, check=False)
    assert strict.returncode == 1 and 'strict decoding error: unknown field "bogus"' in strict.stderr
    warn = kubectl(kubeconfig_path, "apply", "--validate=warn", "-f", "-", input_text=bad)
    assert 'Warning: unknown field "bogus"' in warn.stderr and "configmap/fv created" in warn.stdout
    ignored = kubectl(
        kubeconfig_path, "apply", "--validate=false", "-f", "-", input_text=bad.replace("fv", "fi")
    )
    assert "Warning" not in ignored.stderr


def test_secret_string_data_is_merged_into_data(kubeconfig_path: Path, ns: str) -> None:
    """`kubectl apply` of a Secret written with stringData (create-remote-secret's format)."""
    manifest = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: remote
  namespace: {ns}
data:
  keep: a2VlcA==
  over: b2xk
stringData:
  cluster2: "apiVersion: v1\\nkind: Config\\n"
  over: new
"""
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=manifest)
    got = kubectl_json(kubeconfig_path, "get", "secret", "remote", "-n", ns)
    assert "stringData" not in got
    decoded = {k: base64.b64decode(v).decode() for k, v in got["data"].items()}
    assert decoded == {"keep": "keep", "over": "new", "cluster2": "apiVersion: v1\nkind: Config\n"}
