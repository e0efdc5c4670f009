"""Every error is a Kubernetes Status with the right code, and nothing is half written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import clusters, rawhttp


@pytest.fixture
def api(cluster: clusters.ThreadedCluster) -> rawhttp.Api:
    return rawhttp.for_cluster(cluster.cluster)


def status(r: rawhttp.Response, code: int, reason: str) -> dict[str, Any]:
    assert r.status == code, r.body
    assert r.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = r.json()
    assert (body["kind"], body["apiVersion"], body["status"], body["code"], body["reason"]) == (
        "Status",
        "v1",
        "Failure",
        code,
        reason,
    )
    return body


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": spec or {"containers": [{"name": "c", "image": "x"}]},
    }


def test_401_without_token(cluster: clusters.ThreadedCluster) -> None:
    r = rawhttp.for_cluster(cluster.cluster, token=None).get("/api/v1/namespaces")
    status(r, 401, "Unauthorized")
    assert rawhttp.for_cluster(cluster.cluster, token=None).get("/healthz").status == 200


def test_405_method_not_allowed(api: rawhttp.Api, ns: str) -> None:
    status(api.request("POST", f"/api/v1/namespaces/{ns}/configmaps/x", {}), 405, "MethodNotAllowed")
    status(api.request("PUT", f"/api/v1/namespaces/{ns}/configmaps", {}), 405, "MethodNotAllowed")
    status(api.request("POST", "/apis", {}), 405, "MethodNotAllowed")


def test_404_unknown_resource_and_group(api: rawhttp.Api, ns: str) -> None:
    status(api.get(f"/api/v1/namespaces/{ns}/widgets"), 404, "NotFound")
    status(api.get("/apis/example.com/v1/things"), 404, "NotFound")
    body = status(api.get(f"/api/v1/namespaces/{ns}/pods/nope"), 404, "NotFound")
    assert body["message"] == 'pods "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "pods"}


def test_413_body_over_3_mib(api: rawhttp.Api, ns: str) -> None:
    big = {"metadata": {"name": "big"}, "data": {"k": "x" * (3 * 1024 * 1024)}}
    body = status(
        api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", big), 413, "RequestEntityTooLarge"
    )
    assert "limit is 3145728" in body["message"]
    status(api.get(f"/api/v1/namespaces/{ns}/configmaps/big"), 404, "NotFound")


def test_415_unsupported_media_types(api: rawhttp.Api, ns: str) -> None:
    status(
        api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", "x", content_type="text/plain"),
        415,
        "UnsupportedMediaType",
    )
    api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "m"}})
    status(
        api.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/m", {"data": {}}),
        415,
        "UnsupportedMediaType",
    )


def test_400_malformed_bodies(api: rawhttp.Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    status(api.request("POST", path, b'{"metadata": {"name": '), 400, "BadRequest")
    status(
        api.request("POST", path, b"metadata: [unclosed", content_type="application/yaml"), 400, "BadRequest"
    )
    status(api.request("POST", path, b"[1, 2]"), 400, "BadRequest")
    body = status(
        api.request("POST", path, {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "v"}}),
        400,
        "BadRequest",
    )
    assert "does not match the expected API version" in body["message"]
    body = status(
        api.request("POST", path, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}}),
        400,
        "BadRequest",
    )
    assert "does not match the expected kind" in body["message"]
    body = status(
        api.request("POST", path, {"metadata": {"name": "n", "namespace": "other"}}), 400, "BadRequest"
    )
    assert "namespace of the provided object does not match" in body["message"]
    status(api.request("POST", path, {"metadata": {"name": "t"}, "data": "not-a-map"}), 400, "BadRequest")
    assert [i["metadata"]["name"] for i in api.get(path).json()["items"]] == ["kube-root-ca.crt"]


def test_yaml_bodies_are_accepted(api: rawhttp.Api, ns: str) -> None:
    r = api.request(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: '1'\n",
        content_type="application/yaml",
    )
    assert r.status == 201 and r.json()["data"] == {"a": "1"}


def test_422_names_the_missing_fields(api: rawhttp.Api, ns: str) -> None:
    body = status(
        api.request("POST", f"/api/v1/namespaces/{ns}/pods", pod("p", restartPolicy="Never")), 422, "Invalid"
    )
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}
    ]
    assert body["message"] == 'Pod "p" is invalid: spec.containers: Required value'
    body = status(
        api.request("POST", f"/api/v1/namespaces/{ns}/pods", pod("q", containers=[{"image": "x"}])),
        422,
        "Invalid",
    )
    assert body["details"]["causes"][0]["field"] == "spec.containers[0].name"
    body = status(
        api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "Bad_Name"}}),
        422,
        "Invalid",
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    status(api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {}}), 422, "Invalid")


def test_409_on_stale_update_and_existing_name(api: rawhttp.Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    created = api.request("POST", path, {"metadata": {"name": "c"}}).json()
    status(api.request("POST", path, {"metadata": {"name": "c"}}), 409, "AlreadyExists")
    ok = api.request("PUT", f"{path}/c", dict(created, data={"a": "1"}))
    assert ok.status == 200
    body = status(api.request("PUT", f"{path}/c", dict(created, data={"a": "2"})), 409, "Conflict")
    assert body["message"].startswith(
        'Operation cannot be fulfilled on configmaps "c": the object has been modified'
    )
    assert api.get(f"{path}/c").json()["data"] == {"a": "1"}


def test_field_validation_strict_warn_ignore(api: rawhttp.Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    bad = pod("s")
    bad["spec"]["foo"] = 1
    bad["spec"]["containers"][0]["bogus"] = True
    body = status(api.request("POST", path + "?fieldValidation=Strict", bad), 400, "BadRequest")
    assert body["message"] == (
        'strict decoding error: unknown field "spec.containers[0].bogus", unknown field "spec.foo"'
    )
    dup = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","name":"e"}}'
    body = status(
        api.request("POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict", dup),
        400,
        "BadRequest",
    )
    assert 'duplicate field "name"' in body["message"]
    warned = api.request("POST", path + "?fieldValidation=Warn", bad)
    assert warned.status == 201 and "foo" not in warned.json()["spec"]
    assert any('unknown field \\"spec.foo\\"' in w for w in warned.warnings), warned.warnings
    bad["metadata"]["name"] = "i"
    ignored = api.request("POST", path + "?fieldValidation=Ignore", bad)
    assert ignored.status == 201 and not ignored.warnings and "foo" not in ignored.json()["spec"]
    status(api.request("POST", path + "?fieldValidation=Loud", pod("l")), 400, "BadRequest")


def test_dry_run_writes_nothing(api: rawhttp.Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    r = api.request("POST", path + "?dryRun=All", {"metadata": {"name": "dry"}})
    assert r.status == 201 and r.json()["metadata"]["name"] == "dry"
    status(api.get(f"{path}/dry"), 404, "NotFound")
    status(api.request("POST", path + "?dryRun=Some", {"metadata": {"name": "dry"}}), 400, "BadRequest")
    api.request("POST", path, {"metadata": {"name": "real"}, "data": {"a": "1"}})
    r = api.request(
        "PATCH", f"{path}/real?dryRun=All", {"data": {"a": "2"}}, content_type="application/merge-patch+json"
    )
    assert r.status == 200 and r.json()["data"] == {"a": "2"}
    assert api.get(f"{path}/real").json()["data"] == {"a": "1"}
    current = api.get(f"{path}/real").json()
    r = api.request("PUT", f"{path}/real?dryRun=All", dict(current, data={"a": "3"}))
    assert r.status == 200 and r.json()["data"] == {"a": "3"}
    assert api.get(f"{path}/real").json() == current
    assert api.request("DELETE", f"{path}/real?dryRun=All").status == 200
    assert api.request("DELETE", f"{path}/real", {"kind": "DeleteOptions", "dryRun": ["All"]}).status == 200
    assert api.get(f"{path}/real").status == 200
    status(api.request("DELETE", f"{path}/real", {"preconditions": ["x"]}), 400, "BadRequest")
    status(api.request("DELETE", f"{path}/real", {"propagationPolicy": "Sideways"}), 400, "BadRequest")


def test_patch_errors(api: rawhttp.Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    api.request("POST", path, {"metadata": {"name": "p"}, "data": {"a": "1"}})
    body = status(
        api.request(
            "PATCH",
            f"{path}/p",
            [{"op": "test", "path": "/data/a", "value": "2"}],
            content_type="application/json-patch+json",
        ),
        422,
        "Invalid",
    )
    assert "test failed" in body["message"]
    status(
        api.request(
            "PATCH", f"{path}/p", {"metadata": {"name": "q"}}, content_type="application/merge-patch+json"
        ),
        400,
        "BadRequest",
    )
    status(
        api.request("PATCH", f"{path}/missing", {"data": {}}, content_type="application/merge-patch+json"),
        404,
        "NotFound",
    )
    assert api.get(f"{path}/p").json()["data"] == {"a": "1"}


def test_large_bodies_under_the_limit_are_accepted(api: rawhttp.Api, ns: str) -> None:
    big = "x" * (1024 * 1024)
    r = api.request(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps",
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata: {{k: {big}}}\n",
        content_type="application/yaml",
    )
    assert r.status == 201 and len(r.json()["data"]["k"]) == len(big)
    r = api.request(
        "PATCH",
        f"/api/v1/namespaces/{ns}/configmaps/big",
        {"data": {"k": big + "y"}},
        content_type="application/merge-patch+json",
    )
    assert r.status == 200 and r.json()["data"]["k"].endswith("y")
