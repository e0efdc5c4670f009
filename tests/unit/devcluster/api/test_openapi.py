"""The OpenAPI v3 documents and the discovery documents, built from the registry, without a server."""

from __future__ import annotations

import json

from meshplane.devcluster.api import discovery, openapi
from meshplane.devcluster.schema import resources, schemas

SCH = schemas.Schemas()
REG = resources.Registry.with_builtins()


def test_openapi_document_paths_and_closure() -> None:
    doc = openapi.OpenApi(REG, SCH, "v1.32.0")
    snap = doc.snapshot()
    found = doc.document(snap, "apps", "v1")
    assert found is not None
    raw, digest = found
    parsed = json.loads(raw)
    assert "io.k8s.api.apps.v1.Deployment" in parsed["components"]["schemas"]
    assert "io.k8s.api.core.v1.PodSpec" in parsed["components"]["schemas"]  # referenced, so included
    assert "io.k8s.api.core.v1.Pod" not in parsed["components"]["schemas"]
    patch_op = parsed["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch_op["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert doc.index(snap)["paths"]["apis/apps/v1"]["serverRelativeURL"].endswith(digest)
    assert doc.document(snap, "nope", "v1") is None
    REG.add(
        resources.ResourceType(
            "example.com",
            "v1",
            "Thing",
            "things",
            "thing",
            True,
            schema_name="com.example.v1.Thing",
            crd=True,
        )
    )
    try:
        later = doc.snapshot()
        assert later.stamp != snap.stamp and "apis/example.com/v1" in doc.index(later)["paths"]
        assert "apis/example.com/v1" not in doc.index(snap)["paths"]  # a snapshot never changes
    finally:
        REG.remove("example.com", "things")


def test_discovery_documents() -> None:
    lst = discovery.resource_list(REG, "", "v1")
    assert lst is not None
    names = {r["name"] for r in lst["resources"]}
    assert {"pods", "pods/status", "namespaces", "services/status", "events"} <= names
    agg = discovery.aggregated(REG, core=False)
    groups = [i["metadata"]["name"] for i in agg["items"]]
    # kube-apiserver 1.32's order: apiregistration.k8s.io, then apps, ...
    assert groups[:2] == ["apiregistration.k8s.io", "apps"] and "apiextensions.k8s.io" in groups
