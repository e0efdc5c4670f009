"""The injection webhook over HTTP, and bad AdmissionReview bodies (hypothesis)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshplane.devcluster.api import patch as jsonpatch_apply
from meshplane.webhooks import handler, jsonpatch
from meshplane.webhooks import settings as inj_settings
from tests.support import strategies

from .conftest import POD, SETTINGS


def _review(pod: Any, **req: Any) -> dict[str, Any]:
    request = {
        "uid": "u-1",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "sample",
        "operation": "CREATE",
        "object": pod,
        **req,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application(client_max_size=handler.MAX_BODY + 1024)
    handler.add_routes(app, handler.Injector(SETTINGS))
    runner = web.AppRunner(app, lingering_time=0)  # do not wait for the unread body of the 413 test
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _post(url: str, body: bytes, ctype: str = "application/json") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers={"Content-Type": ctype}) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def test_inject_over_http(server: str) -> None:
    status, answer = await _post(
        f"{server}/inject/cluster/cluster2/net/network1", json.dumps(_review(POD)).encode()
    )
    assert status == 200
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    resp = answer["response"]
    assert resp["uid"] == "u-1" and resp["allowed"] is True and resp["patchType"] == "JSONPatch"
    pod = jsonpatch_apply.json_patch(copy.deepcopy(POD), json.loads(base64.b64decode(resp["patch"])))
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][-1]["env"]}
    assert env["ISTIO_META_CLUSTER_ID"] == "cluster2"
    # the same pod, already injected, is admitted unchanged
    status, answer = await _post(f"{server}/inject", json.dumps(_review(pod)).encode())
    assert answer["response"] == {"uid": "u-1", "allowed": True}


async def test_http_errors(server: str) -> None:
    assert (await _post(f"{server}/inject", b""))[0] == 400
    assert (await _post(f"{server}/inject", b"{}", "text/plain"))[0] == 415
    big = b" " * (handler.MAX_BODY + 1)
    assert (await _post(f"{server}/inject", big))[0] == 413
    status, answer = await _post(f"{server}/inject", b"not json")
    assert status == 200 and answer["response"]["allowed"] is False
    assert "could not decode" in answer["response"]["status"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "not a JSON object"),
        ({"kind": "Pod"}, "expected kind AdmissionReview"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1", "request": {}}, "unsupported"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}, "has no request"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}}, "has no uid"),
        (_review("pod"), "not a Pod"),
        (_review({**POD, "spec": []}), "must be objects"),
        (_review({**POD, "metadata": {"labels": {"a": 1}}}), "metadata.labels"),
        (_review({**POD, "spec": {"containers": [{"image": "x"}]}}), "string name"),
    ],
)
def test_bad_reviews_are_refused_with_the_reason(body: Any, message: str) -> None:
    answer = handler.Injector(SETTINGS).review(json.dumps(body).encode(), "/inject")
    assert answer["kind"] == "AdmissionReview" and answer["response"]["allowed"] is False
    assert message in answer["response"]["status"]["message"]


def test_not_a_pod_create_is_allowed_unchanged() -> None:
    inj = handler.Injector(SETTINGS)
    for review in (
        _review(POD, operation="UPDATE"),
        _review({"kind": "Service"}, kind={"group": "", "version": "v1", "kind": "Service"}),
    ):
        assert inj.review(json.dumps(review).encode(), "/inject")["response"] == {
            "uid": "u-1",
            "allowed": True,
        }


def _patched_env(answer: dict[str, Any]) -> dict[str, str]:
    ops = json.loads(base64.b64decode(answer["response"]["patch"]))
    proxy = next(
        op["value"]
        for op in ops
        if isinstance(op.get("value"), dict) and op["value"].get("name") == "istio-proxy"
    )
    return {e["name"]: e.get("value", "") for e in proxy["env"]}


def test_a_remote_api_servers_review_is_decided_by_the_pod_not_by_namespace_labels() -> None:
    """cluster2's API server already applied the webhook's namespaceSelector; the handler injects
    (env from the path) and refuses only what Istio's injectRequired refuses, whatever namespace."""
    inj = handler.Injector(SETTINGS)
    path = "/inject/cluster/cluster2/net/network2"
    on = inj.review(json.dumps(_review(POD, namespace="only-in-cluster2")).encode(), path)
    env = _patched_env(on)
    assert env["ISTIO_META_CLUSTER_ID"] == "cluster2" and env["ISTIO_META_NETWORK"] == "network2"
    opted_out = copy.deepcopy(POD)
    opted_out.setdefault("metadata", {}).setdefault("annotations", {})["sidecar.istio.io/inject"] = "false"
    host = {**copy.deepcopy(POD), "spec": {**POD["spec"], "hostNetwork": True}}
    system = copy.deepcopy(POD)
    system["metadata"]["namespace"] = "kube-system"
    for pod, ns in ((opted_out, "sample"), (host, "sample"), (system, "kube-system")):
        answer = inj.review(json.dumps(_review(pod, namespace=ns)).encode(), path)
        assert answer["response"] == {"uid": "u-1", "allowed": True}


def test_settings_update_applies_to_the_next_review() -> None:
    inj = handler.Injector(SETTINGS)
    inj.update(inj_settings.InjectionSettings(proxy_image="other/proxyv2:9"))
    patch = json.loads(
        base64.b64decode(inj.review(json.dumps(_review(POD)).encode(), "/inject")["response"]["patch"])
    )
    assert any(
        op.get("value", {}).get("image") == "other/proxyv2:9"
        for op in patch
        if isinstance(op.get("value"), dict)
    )


_json = strategies.json_values(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    max_leaves=20,
)


def _mutated_review() -> st.SearchStrategy[Any]:
    keys = ("metadata", "spec", "labels", "annotations", "containers", "name", "ports", "namespace", "uid")
    return st.builds(
        lambda path, value: _set(copy.deepcopy(_review(POD)), path, value),
        st.lists(st.sampled_from(keys), min_size=1, max_size=4),
        _json,
    )


def _set(doc: Any, path: list[str], value: Any) -> Any:
    node = doc["request"]["object"] if path[0] != "uid" else doc["request"]
    for key in path[:-1]:
        if not isinstance(node, dict):
            return doc
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        _json.map(lambda v: json.dumps(v).encode()),
        _mutated_review().map(lambda v: json.dumps(v).encode()),
    )
)
def test_bad_bodies_never_crash(body: bytes) -> None:
    answer = handler.Injector(SETTINGS).review(body, "/inject/cluster/c/net/n")
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    resp = answer["response"]
    assert isinstance(resp["allowed"], bool)
    if resp["allowed"] and "patch" in resp:
        review = json.loads(body)
        jsonpatch_apply.json_patch(
            copy.deepcopy(review["request"]["object"]), json.loads(base64.b64decode(resp["patch"]))
        )
    if not resp["allowed"]:
        assert resp["status"]["message"]


@settings(max_examples=300, deadline=None)
@given(_json, _json)
def test_json_patch_diff_turns_a_into_b(a: Any, b: Any) -> None:
    assert jsonpatch_apply.json_patch(copy.deepcopy(a), jsonpatch.diff(a, b)) == b
