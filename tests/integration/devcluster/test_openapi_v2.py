"""GET /openapi/v2 (Swagger 2.0, JSON): valid, holds every discovered kind, follows CRDs, ETag/304."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openapi_spec_validator.validation.validators import OpenAPIV2SpecValidator

from tests.support import clusters, rawhttp, wait
from tests.support.clusters import kubectl

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
            nullable: true
            properties:
              size: {type: integer}
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
        assert "nullable" not in spec and spec["properties"]["size"] == {"type": "integer"}
        assert "anyOf" not in spec["properties"]["port"]  # v3-only, dropped as kube-apiserver does
        assert "/apis/v2test.example.com/v1/namespaces/{namespace}/sprockets/{name}" in doc["paths"]
        assert OpenAPIV2SpecValidator(doc).is_valid()
    finally:
        kubectl(kubeconfig_path, "delete", "crd", "sprockets.v2test.example.com")
    wait.wait_until(lambda: NAME not in _doc(api)[0]["definitions"], timeout=10)
    assert not any("/v2test.example.com/" in p for p in _doc(api)[0]["paths"])
