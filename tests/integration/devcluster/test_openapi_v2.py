"""GET /openapi/v2 (Swagger 2.0, JSON and gnostic protobuf): valid, holds every discovered kind,
follows CRDs, ETag/304."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from openapi_spec_validator.validation.validators import OpenAPIV2SpecValidator

from meshplane.devcluster.api import openapi_pb
from tests.support import clusters, rawhttp, wait
from tests.support.clusters import kubectl, kubectl_json

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: sprockets.v2test.example.com
spec:
  group: v2test.example.com
  scope: Namespaced
  names: {plural: sprockets, singular: sprocket, kind: Sprocket}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size, note]
            properties:
              size: {type: integer}
              note: {type: string, nullable: true}
              port: {x-kubernetes-int-or-string: true, anyOf: [{type: integer}, {type: string}]}
"""
NAME = "com.example.v2test.v1.Sprocket"


def _doc(api: rawhttp.Api) -> tuple[dict[str, Any], str]:
    r = api.get("/openapi/v2", headers={"Accept": "application/json"})
    assert r.status == 200, r.body[:300]
    assert r.headers["Content-Type"].startswith("application/json")
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    return r.json(), etag


def test_v2_validates_and_holds_every_discovered_kind(cluster: clusters.ThreadedCluster) -> None:
    api = rawhttp.for_cluster(cluster.cluster)
    doc, _ = _doc(api)
    errs = [str(e)[:200] for e in OpenAPIV2SpecValidator(doc).iter_errors()]
    assert errs == []
    gvks = {
        (g["group"], g["version"], g["kind"])
        for d in doc["definitions"].values()
        for g in d.get("x-kubernetes-group-version-kind", [])
    }
    listed = [("", "v1", r) for r in api.get("/api/v1").json()["resources"]]
    for group in api.get("/apis").json()["groups"]:
        for v in group["versions"]:
            listed += [
                (group["name"], v["version"], r)
                for r in api.get(f"/apis/{v['groupVersion']}").json()["resources"]
            ]
    kinds = {(g, v, r["kind"]) for g, v, r in listed if "/" not in r["name"]}
    assert kinds and kinds <= gvks, kinds - gvks
    sa = doc["definitions"]["io.k8s.api.core.v1.ServiceAccount"]
    assert sa["properties"]["secrets"]["x-kubernetes-patch-merge-key"] == "name"
    assert sa["properties"]["secrets"]["x-kubernetes-patch-strategy"] == "merge"


def _pb(api: rawhttp.Api, accept: str = openapi_pb.MIME_DEPRECATED) -> tuple[dict[str, Any], str]:
    """kubectl asks with the deprecated `@` form; the answer names the current type either way."""
    r = api.get("/openapi/v2", headers={"Accept": accept})
    assert r.status == 200, r.body[:300]
    assert r.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    return openapi_pb.decode(r.body), r.headers["ETag"]


def test_v2_protobuf_decodes_into_the_json_document(cluster: clusters.ThreadedCluster) -> None:
    api = rawhttp.for_cluster(cluster.cluster)
    doc, etag = _doc(api)
    from_pb, pb_etag = _pb(api)
    assert pb_etag == etag
    assert from_pb == doc
    assert _pb(api, openapi_pb.MIME)[0] == doc
    r = api.get("/openapi/v2", headers={"Accept": openapi_pb.MIME, "If-None-Match": etag})
    assert r.status == 304 and r.body == b""


def test_v2_etag_gives_304(cluster: clusters.ThreadedCluster) -> None:
    api = rawhttp.for_cluster(cluster.cluster)
    _, etag = _doc(api)
    r = api.get("/openapi/v2", headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b"" and r.headers["ETag"] == etag
    assert api.get("/openapi/v2", headers={"If-None-Match": '"other"'}).status == 200


def test_v2_follows_crd_creation_and_deletion(
    kubeconfig_path: Path, cluster: clusters.ThreadedCluster
) -> None:
    api = rawhttp.for_cluster(cluster.cluster)
    before, etag = _doc(api)
    assert NAME not in before["definitions"]
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=CRD)
    try:
        kubectl(
            kubeconfig_path,
            "wait",
            "--for=condition=Established",
            "crd/sprockets.v2test.example.com",
            "--timeout=10s",
        )
        doc, etag2 = _doc(api)
        assert etag2 != etag
        schema = doc["definitions"][NAME]
        assert schema["x-kubernetes-group-version-kind"] == [
            {"group": "v2test.example.com", "kind": "Sprocket", "version": "v1"}
        ]
        spec = schema["properties"]["spec"]
        assert spec["properties"]["size"] == {"type": "integer"}
        assert spec["properties"]["note"] == {} and spec["required"] == [
            "size"
        ]  # nullable: as kube-apiserver
        assert schema["properties"]["metadata"] == {
            "$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        }
        assert "anyOf" not in spec["properties"]["port"]  # v3-only, dropped as kube-apiserver does
        assert "/apis/v2test.example.com/v1/namespaces/{namespace}/sprockets/{name}" in doc["paths"]
        assert OpenAPIV2SpecValidator(doc).is_valid()
        from_pb, _ = _pb(api)
        assert from_pb == doc and NAME in from_pb["definitions"]
    finally:
        kubectl(kubeconfig_path, "delete", "crd", "sprockets.v2test.example.com")
    wait.wait_until(lambda: NAME not in _doc(api)[0]["definitions"], timeout=10)
    assert not any("/v2test.example.com/" in p for p in _doc(api)[0]["paths"])
    assert NAME not in _pb(api)[0]["definitions"]


# The reader manifest istioctl x create-remote-secret applies (Istio 1.14), namespace and names as its.
READER = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: istio-reader-service-account
  namespace: {ns}
  labels: {{app: istio-reader{extra_label}}}
secrets:
- name: istio-reader-service-account-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: istio-reader-clusterrole-{ns}
rules:
- apiGroups: ["config.istio.io", "networking.istio.io", "security.istio.io"]
  resources: ["*"]
  verbs: [{verbs}]
- apiGroups: [""]
  resources: ["endpoints", "pods", "services", "nodes", "replicationcontrollers", "namespaces", "secrets"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: istio-reader-clusterrole-{ns}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: istio-reader-clusterrole-{ns}}}
subjects:
- {{kind: ServiceAccount, name: istio-reader-service-account, namespace: {ns}}}
---
apiVersion: v1
kind: Secret
metadata:
  name: istio-reader-service-account-token
  namespace: {ns}
  annotations: {{kubernetes.io/service-account.name: istio-reader-service-account}}
type: kubernetes.io/service-account-token
"""


def _apply_v2(kubeconfig_path: Path, manifest: str) -> subprocess.CompletedProcess[str]:
    """Client-side `kubectl apply` with OpenAPI v3 patching off, so it computes strategic merge
    patches from /openapi/v2 (protobuf) as client-go before v3 (istioctl 1.14, Helm 3) does."""
    home = kubeconfig_path.parent / ".kubectl-home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig_path),
        "KUBECTL_OPENAPIV3_PATCH": "false",
    }
    proc = subprocess.run(
        [clusters.KUBECTL, "--v=6", "apply", "-f", "-"],
        capture_output=True,
        text=True,
        input=manifest,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_reader_manifest_applies_with_v2_patches(kubeconfig_path: Path, ns: str) -> None:
    first = _apply_v2(kubeconfig_path, READER.format(ns=ns, verbs='"get", "list", "watch"', extra_label=""))
    assert "serviceaccount/istio-reader-service-account created" in first.stdout
    assert f"clusterrole.rbac.authorization.k8s.io/istio-reader-clusterrole-{ns} created" in first.stdout
    changed = READER.format(ns=ns, verbs='"get", "list"', extra_label=", tier: reader")
    second = _apply_v2(kubeconfig_path, changed)
    assert "serviceaccount/istio-reader-service-account configured" in second.stdout, second.stdout
    assert f"clusterrole.rbac.authorization.k8s.io/istio-reader-clusterrole-{ns} configured" in second.stdout
    assert re.search(r"GET https://\S+/openapi/v2\S* 200 OK", second.stderr), second.stderr[-3000:]
    sa = kubectl_json(kubeconfig_path, "-n", ns, "get", "serviceaccount", "istio-reader-service-account")
    assert sa["metadata"]["labels"] == {"app": "istio-reader", "tier": "reader"}
    assert sa["secrets"] == [{"name": "istio-reader-service-account-token"}]
    role = kubectl_json(kubeconfig_path, "get", "clusterrole", f"istio-reader-clusterrole-{ns}")
    assert role["rules"][0]["verbs"] == ["get", "list"]
    kubectl(kubeconfig_path, "delete", "clusterrole,clusterrolebinding", f"istio-reader-clusterrole-{ns}")


def test_kubectl_create_of_a_list_validates_through_v2(kubeconfig_path: Path) -> None:
    """`kubectl create -f` of a List (what `kubectl get -o json` writes) validates the items with the
    v2 document; a Content-Type Go's mime parser cannot read failed it ("mime: unexpected content
    after media subtype") before any request was made."""
    items = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"listed-{i}", "namespace": "default"}}
        for i in range(2)
    ]
    doc = {"apiVersion": "v1", "kind": "List", "items": items}
    try:
        done = kubectl(kubeconfig_path, "create", "-f", "-", input_text=json.dumps(doc), check=False)
        assert done.returncode == 0, done.stderr
        assert "listed-0 created" in done.stdout and "listed-1 created" in done.stdout
        bad = {**doc, "items": [{**items[0], "data": {"k": 1}}]}  # data values are strings
        refused = kubectl(kubeconfig_path, "create", "-f", "-", input_text=json.dumps(bad), check=False)
        assert refused.returncode != 0 and "data.k" in refused.stderr, refused.stderr
    finally:
        kubectl(kubeconfig_path, "delete", "configmap", "listed-0", "listed-1", "-n", "default", check=False)
