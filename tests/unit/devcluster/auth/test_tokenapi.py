"""TokenRequest and TokenReview handlers: Kubernetes' answers, and bad bodies."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from meshplane.devcluster import errors, seams
from meshplane.devcluster.auth import authn, tokenapi, tokens
from meshplane.devcluster.schema import resources
from meshplane.devcluster.storage import persistence, store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

ADMIN = "admin-secret-token"
USER = seams.UserInfo("kubernetes-admin", groups=("system:masters", "system:authenticated"))
_KEY = tokens.generate_key()

json_values = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats(allow_nan=False) | hs.text(max_size=20),
    lambda inner: hs.lists(inner, max_size=4) | hs.dictionaries(hs.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
spec_keys = hs.sampled_from(["audiences", "expirationSeconds", "boundObjectRef", "token", "other"])


@pytest.fixture
async def api() -> tuple[store.Store, tokenapi.TokenApi]:
    st = store.Store(persistence.MemoryPersistence(), clock_mod.SystemClock())
    await st.open()
    await st.create("serviceaccounts", {"metadata": {"namespace": "ns", "name": "sa"}})
    await st.create(
        "pods", {"metadata": {"namespace": "ns", "name": "p"}, "spec": {"serviceAccountName": "sa"}}
    )
    await st.create(
        "pods", {"metadata": {"namespace": "ns", "name": "q"}, "spec": {"serviceAccountName": "other"}}
    )
    a = authn.Authenticator(ADMIN, tokens.Verifier(_KEY, st), clock_mod.SystemClock())
    return st, tokenapi.TokenApi(st, a, _KEY, clock_mod.SystemClock())


def handler_request(body: Obj, name: str = "sa", sub: str = "token") -> resources.HandlerRequest:
    rt = resources.ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True)
    return resources.HandlerRequest(rt, sub, "ns", name, USER, body, {}, False)


async def test_token_request_defaults_and_binding(api: tuple[store.Store, tokenapi.TokenApi]) -> None:
    st, t = api
    code, out = await t.token_request(handler_request({"spec": {}}))
    assert code == 201 and out["kind"] == "TokenRequest" and out["apiVersion"] == "authentication.k8s.io/v1"
    assert out["metadata"] == {"name": "sa", "namespace": "ns", "creationTimestamp": None}
    assert out["spec"]["audiences"] == [tokens.ISSUER] and out["spec"]["expirationSeconds"] == 3600
    exp = rfc3339.parse(out["status"]["expirationTimestamp"])
    assert abs(exp - (time.time() + 3600)) < 5

    pod_uid = st.peek("pods", "ns", "p")["metadata"]["uid"]  # type: ignore[index]
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": pod_uid}
    code, out = await t.token_request(handler_request({"spec": {"boundObjectRef": ref}}))
    assert code == 201
    with pytest.raises(errors.ApiError) as e:
        await t.token_request(handler_request({"spec": {"boundObjectRef": {**ref, "name": "q", "uid": ""}}}))
    assert e.value.code == 400
    assert (
        e.value.message
        == 'cannot bind token for serviceaccount "sa" to pod running with serviceaccount "other"'
    )
    with pytest.raises(errors.ApiError) as e:
        await t.token_request(handler_request({"spec": {"boundObjectRef": {**ref, "uid": "stale"}}}))
    assert e.value.code == 409
    with pytest.raises(errors.ApiError) as e:
        await t.token_request(
            handler_request(
                {"spec": {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "c"}}}
            )
        )
    assert (
        e.value.code == 400 and e.value.message == "cannot bind token to object of type /v1, Kind=ConfigMap"
    )
    with pytest.raises(errors.ApiError) as e:
        await t.token_request(handler_request({"spec": {"expirationSeconds": 2**33}}))
    assert e.value.code == 422 and "may not specify a duration larger than 2^32 seconds" in e.value.message


async def test_token_review_answers(api: tuple[store.Store, tokenapi.TokenApi]) -> None:
    _st, t = api
    code, out = await t.token_review(handler_request({"spec": {"token": ADMIN}}, name="", sub=""))
    assert code == 201 and out["status"]["authenticated"] is True
    assert out["status"]["user"] == {
        "username": "kubernetes-admin",
        "groups": ["system:masters", "system:authenticated"],
    }
    assert out["status"]["audiences"] == [tokens.ISSUER]
    code, out = await t.token_review(handler_request({"spec": {"token": "nope", "audiences": ["x"]}}))
    assert out["status"] == {"user": {}, "error": "invalid bearer token"}
    assert out["spec"] == {"token": "nope", "audiences": ["x"]}
    with pytest.raises(errors.ApiError) as e:
        await t.token_review(handler_request({"spec": {}}))
    assert e.value.code == 400 and e.value.message == "token is required for TokenReview in authentication"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=hs.dictionaries(
        hs.sampled_from(["spec", "kind", "apiVersion", "metadata"]),
        hs.dictionaries(spec_keys, json_values, max_size=4) | json_values,
        max_size=4,
    )
)
async def test_bad_bodies_get_status_errors(api: tuple[store.Store, tokenapi.TokenApi], body: Obj) -> None:
    st, t = api
    before = st.rv
    for call in (t.token_request, t.token_review):
        try:
            code, out = await call(handler_request(body))
        except errors.ApiError as e:
            assert 400 <= e.code < 500 and e.message
        else:
            assert code == 201 and isinstance(out["status"], dict)
    assert st.rv == before  # nothing is ever written


async def test_kubelet_api_tokens_are_extended(api: tuple[store.Store, tokenapi.TokenApi]) -> None:
    _st, t = api
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "p"}
    token, expiry = t.issue("ns", "sa", (), 3607, ref)
    claims = _claims(token)
    assert claims["exp"] - claims["iat"] == tokens.EXTENDED_EXPIRATION
    assert claims["kubernetes.io"]["warnafter"] == claims["iat"] + 3607
    assert expiry == claims["iat"] + 3607
    # other audiences, other durations, or no pod: not extended
    for args in (
        ("ns", "sa", ("istio-ca",), 3607, ref),
        ("ns", "sa", (), 3608, ref),
        ("ns", "sa", (), 3607, None),
    ):
        c = _claims(t.issue(*args)[0])  # type: ignore[arg-type]
        assert c["exp"] - c["iat"] in (3607, 3608) and "warnafter" not in c["kubernetes.io"]


def _claims(token: str) -> Obj:
    import base64
    import json

    part = token.split(".")[1]
    out: Obj = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return out
