"""Discovery (legacy and aggregated), /version, health, and the OpenAPI v3 documents kubectl reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.devcluster.api import discovery
from tests.support import clusters, rawhttp
from tests.support.clusters import kubectl


@pytest.fixture
def api(cluster: clusters.ThreadedCluster) -> rawhttp.Api:
    return rawhttp.for_cluster(cluster.cluster)


def test_legacy_discovery(api: rawhttp.Api) -> None:
    assert api.get("/api").json()["versions"] == ["v1"]
    core = {r["name"]: r for r in api.get("/api/v1").json()["resources"]}
    assert core["pods"]["kind"] == "Pod" and core["pods"]["namespaced"] is True
    assert "pods/status" in core and core["namespaces"]["namespaced"] is False
    assert core["services"]["shortNames"] == ["svc"]
    groups = {g["name"]: g for g in api.get("/apis").json()["groups"]}
    for g in (
        "apps",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "admissionregistration.k8s.io",
    ):
        assert groups[g]["preferredVersion"]["version"] == "v1"
    assert api.get("/apis/apps").json()["kind"] == "APIGroup"
    apps = {r["name"] for r in api.get("/apis/apps/v1").json()["resources"]}
    assert {"deployments", "deployments/status", "replicasets"} <= apps
    assert api.get("/apis/nope/v1").status == 404


def test_aggregated_discovery(api: rawhttp.Api) -> None:
    accept = {"Accept": discovery.AGGREGATED + ",application/json"}
    r = api.get("/apis", headers=accept)
    assert r.headers["Content-Type"] == discovery.AGGREGATED
    doc = r.json()
    assert doc["kind"] == "APIGroupDiscoveryList"
    apps = next(i for i in doc["items"] if i["metadata"]["name"] == "apps")
    dep = next(res for res in apps["versions"][0]["resources"] if res["resource"] == "deployments")
    assert dep["scope"] == "Namespaced" and dep["responseKind"]["kind"] == "Deployment"
    assert dep["subresources"][0]["subresource"] == "status"
    core = api.get("/api", headers=accept).json()
    assert [i["metadata"]["name"] for i in core["items"]] == [""]


def test_version_and_health_need_no_token(cluster: clusters.ThreadedCluster) -> None:
    anon = rawhttp.for_cluster(cluster.cluster, token=None)
    assert anon.get("/version").json()["gitVersion"].startswith("v1.32")
    for path in ("/healthz", "/readyz", "/livez"):
        r = anon.get(path)
        assert r.status == 200 and r.body == b"ok"


def test_openapi_v3_index_and_documents(api: rawhttp.Api) -> None:
    index = api.get("/openapi/v3").json()["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/rbac.authorization.k8s.io/v1"} <= set(index)
    url = index["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    r = api.get(url)
    assert r.headers.get("Cache-Control") == "public, immutable"
    doc = r.json()
    schemas = doc["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    patch_op = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch_op["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert "fieldValidation" in {p["name"] for p in patch_op["parameters"]}
    assert api.get("/openapi/v3/apis/nope/v1").status == 404


def test_kubectl_reads_discovery_and_openapi(kubeconfig_path: Path) -> None:
    versions = kubectl(kubeconfig_path, "api-versions").stdout.split()
    assert {"v1", "apps/v1", "apiextensions.k8s.io/v1", "discovery.k8s.io/v1"} <= set(versions)
    explained = kubectl(kubeconfig_path, "explain", "pods.spec.containers.ports").stdout
    assert "containerPort" in explained
