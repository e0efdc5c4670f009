"""The authenticator: admin token, service-account JWTs, and TokenReview-style answers."""

from __future__ import annotations

import time

import pytest

from meshplane.devcluster.auth import authn, tokens
from meshplane.devcluster.storage import persistence, store
from meshplane.runtime import clock as clock_mod

ADMIN = "admin-token-0123456789"


class FixedClock:
    def __init__(self, wall: float) -> None:
        self.now = wall

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def st() -> store.Store:
    s = store.Store(persistence.MemoryPersistence(), clock_mod.SystemClock())
    await s.open()
    return s


def make_authn(st: store.Store, key: tokens.SigningKey, clock: FixedClock) -> authn.Authenticator:
    return authn.Authenticator(ADMIN, tokens.Verifier(key, st), clock)


async def test_admin_token(st: store.Store) -> None:
    a = make_authn(st, tokens.generate_key(), FixedClock(time.time()))
    user = await a.authenticate(ADMIN)
    assert user is not None
    assert user.username == "kubernetes-admin"
    assert user.groups == ("system:masters", "system:authenticated")
    assert await a.authenticate(ADMIN + "x") is None
    assert await a.authenticate("") is None
    assert await a.authenticate(None) is None
    # the admin token is audience-agnostic: valid for the API audience only
    r = await a.review(ADMIN, ["istio-ca"])
    assert not r.authenticated and r.error == "invalid bearer token"
    r = await a.review(ADMIN, [])
    assert r.authenticated and r.audiences == tokens.API_AUDIENCES


async def test_service_account_token_for_api_and_other_audiences(st: store.Store) -> None:
    key = tokens.generate_key()
    clock = FixedClock(time.time())
    a = make_authn(st, key, clock)
    acct = await st.create("serviceaccounts", {"metadata": {"namespace": "ns", "name": "sa"}})
    api_tok = key.sign(tokens.bound_claims(acct, list(tokens.API_AUDIENCES), 3600, clock.now))
    ca_tok = key.sign(tokens.bound_claims(acct, ["istio-ca"], 3600, clock.now))

    user = await a.authenticate(api_tok)
    assert user is not None and user.username == "system:serviceaccount:ns:sa"
    assert "system:authenticated" in user.groups
    # a token for istio-ca only is not valid for the API, as in Kubernetes
    assert await a.authenticate(ca_tok) is None
    r = await a.review(ca_tok, [])
    assert r.error == (
        '[invalid bearer token, token audiences ["istio-ca"] is invalid for the target audiences '
        '["https://kubernetes.default.svc.cluster.local"]]'
    )
    r = await a.review(ca_tok, ["istio-ca", "other"])
    assert r.authenticated and r.audiences == ("istio-ca",)

    clock.now += 3600 + 61
    r = await a.review(api_tok, [])
    assert not r.authenticated
    assert r.error == "[invalid bearer token, service account token has expired]"


async def test_unknown_token(st: store.Store) -> None:
    a = make_authn(st, tokens.generate_key(), FixedClock(time.time()))
    r = await a.review("garbage", [])
    assert not r.authenticated and r.user is None and r.error == "invalid bearer token"
