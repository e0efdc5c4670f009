"""CustomResourceDefinitions: served on creation (discovery, OpenAPI, pruning, status), gone on deletion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from tests.support import clusters, rawhttp, wait
from tests.support.clusters import kubectl, kubectl_json

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer}
              color: {type: string}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status:
            type: object
            properties:
              ready: {type: boolean}
"""

WIDGET = """\
apiVersion: example.com/v1
kind: Widget
metadata: {{name: {name}, namespace: {ns}}}
spec: {{size: {size}, color: red}}
"""


@pytest.fixture(scope="module")
def crd(kubeconfig_path: Path) -> str:
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=CRD)
    kubectl(
        kubeconfig_path, "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s"
    )
    return "widgets.example.com"


def test_crd_is_served_after_creation(kubeconfig_path: Path, crd: str, ns: str) -> None:
    out = kubectl(
        kubeconfig_path, "apply", "-f", "-", input_text=WIDGET.format(name="w1", ns=ns, size=3)
    ).stdout
    assert "widget.example.com/w1 created" in out
    again = kubectl(
        kubeconfig_path, "apply", "-f", "-", input_text=WIDGET.format(name="w1", ns=ns, size=3)
    ).stdout
    assert "unchanged" in again
    changed = kubectl(kubeconfig_path, "apply", "-f", "-", input_text=WIDGET.format(name="w1", ns=ns, size=4))
    assert "configured" in changed.stdout
    table = kubectl(kubeconfig_path, "get", "wd", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "AGE"] and table[1].split()[:2] == ["w1", "4"]
    resources = kubectl(kubeconfig_path, "api-resources", "--api-group=example.com").stdout
    assert "widgets" in resources and "Widget" in resources


async def test_crd_objects_through_lightkube(
    cluster: clusters.ThreadedCluster, crd: str, client: Any, ns: str
) -> None:
    widget = create_namespaced_resource("example.com", "v1", "Widget", "widgets")
    created = await client.create(
        widget(
            metadata={"name": "lw", "namespace": ns}, spec={"size": 1, "unknown": "x", "extra": {"free": 1}}
        )
    )
    assert created.spec == {"size": 1, "extra": {"free": 1}}  # pruned, except where preserved
    await client.patch(
        widget.Status, "lw", {"status": {"ready": True}}, namespace=ns, patch_type=PatchType.MERGE
    )
    got = await client.get(widget, "lw", namespace=ns)
    assert got.status == {"ready": True}
    names = [w.metadata.name async for w in client.list(widget, namespace=ns)]
    assert names == ["lw"]


def test_crd_validation_and_patch_types(cluster: clusters.ThreadedCluster, crd: str, ns: str) -> None:
    api = rawhttp.for_cluster(cluster.cluster)
    path = f"/apis/example.com/v1/namespaces/{ns}/widgets"
    r = api.request(
        "POST",
        path + "?fieldValidation=Strict",
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "s"},
            "spec": {"size": 1, "bogus": 1},
        },
    )
    assert r.status == 400 and r.json()["message"] == 'strict decoding error: unknown field "spec.bogus"'
    r = api.request(
        "POST",
        path,
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "m"},
            "spec": {"color": "blue"},
        },
    )
    assert r.status == 422 and r.json()["details"]["causes"][0]["field"] == "spec.size"
    r = api.request(
        "POST",
        path,
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "t"},
            "spec": {"size": "big"},
        },
    )
    assert r.status == 400 and "spec.size" in r.json()["message"]
    api.request(
        "POST",
        path,
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "p"}, "spec": {"size": 1}},
    )
    r = api.request(
        "PATCH", f"{path}/p", {"spec": {"size": 2}}, content_type="application/strategic-merge-patch+json"
    )
    assert r.status == 415
    r = api.request("PATCH", f"{path}/p", {"spec": {"size": 2}}, content_type="application/merge-patch+json")
    assert r.status == 200 and r.json()["spec"]["size"] == 2


def test_crd_in_discovery_and_openapi(cluster: clusters.ThreadedCluster, crd: str) -> None:
    api = rawhttp.for_cluster(cluster.cluster)
    groups = api.get("/apis").json()["groups"]
    assert any(g["name"] == "example.com" for g in groups)
    res = api.get("/apis/example.com/v1").json()["resources"]
    assert {r["name"] for r in res} >= {"widgets", "widgets/status"}
    index = api.get("/openapi/v3").json()["paths"]
    url = index["apis/example.com/v1"]["serverRelativeURL"]
    doc = api.get(url).json()
    schema = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "kind": "Widget", "version": "v1"}
    ]
    assert schema["properties"]["spec"]["required"] == ["size"]


def test_deleting_the_crd_removes_its_objects(
    kubeconfig_path: Path, cluster: clusters.ThreadedCluster, ns: str
) -> None:
    crd2 = (
        CRD.replace("widgets", "gadgets")
        .replace("widget", "gadget")
        .replace("Widget", "Gadget")
        .replace("[wd]", "[gd]")
    )
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=crd2)
    kubectl(
        kubeconfig_path,
        "apply",
        "-f",
        "-",
        input_text=WIDGET.format(name="g1", ns=ns, size=1).replace("Widget", "Gadget"),
    )
    assert kubectl_json(kubeconfig_path, "get", "gadgets", "-n", ns)["items"]
    kubectl(kubeconfig_path, "delete", "crd", "gadgets.example.com")
    api = rawhttp.for_cluster(cluster.cluster)
    wait.wait_until(
        lambda: api.get(f"/apis/example.com/v1/namespaces/{ns}/gadgets").status == 404,
        what="gadgets no longer served",
    )
    assert cluster.run(lambda: cluster.cluster.store.count("example.com/gadgets")) == 0
    with pytest.raises(AssertionError):
        kubectl(kubeconfig_path, "get", "crd", "gadgets.example.com")


def test_invalid_crd_is_422(cluster: clusters.ThreadedCluster) -> None:
    api = rawhttp.for_cluster(cluster.cluster)
    r = api.request(
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "wrong.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "things", "kind": "Thing"},
                "versions": [{"name": "v1", "served": True, "storage": True}],
            },
        },
    )
    assert r.status == 422
    assert any(c["field"] == "metadata.name" for c in r.json()["details"]["causes"])


def test_crd_cannot_take_over_a_builtin_group(cluster: clusters.ThreadedCluster) -> None:
    api = rawhttp.for_cluster(cluster.cluster)
    r = api.request(
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "roles.rbac.authorization.k8s.io"},
            "spec": {
                "group": "rbac.authorization.k8s.io",
                "scope": "Namespaced",
                "names": {"plural": "roles", "kind": "Role"},
                "versions": [{"name": "v1", "served": True, "storage": True}],
            },
        },
    )
    assert r.status == 422 and "built-in API" in r.json()["message"]
