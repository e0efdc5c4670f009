"""Service-account JWTs: issue, verify, and every way a token stops being valid."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from meshplane.devcluster import errors
from meshplane.devcluster.auth import tokens
from meshplane.devcluster.storage import persistence, store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime.jsonobj import Obj


@pytest.fixture
async def st() -> store.Store:
    s = store.Store(persistence.MemoryPersistence(), clock_mod.SystemClock())
    await s.open()
    return s


async def make(st: store.Store, key: str, obj: Obj) -> Obj:
    return await st.create(key, obj)


async def sa(st: store.Store, ns: str = "ns", name: str = "sa") -> Obj:
    return await make(st, "serviceaccounts", {"metadata": {"namespace": ns, "name": name}})


def payload(token: str) -> Obj:
    part = token.split(".")[1]
    data: Obj = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


async def test_bound_token_round_trip(st: store.Store) -> None:
    key = tokens.generate_key()
    acct = await sa(st)
    pod = await make(st, "pods", {"metadata": {"namespace": "ns", "name": "p"}, "spec": {}})
    now = time.time()
    tok = key.sign(tokens.bound_claims(acct, ["istio-ca"], 3600, now, pod=pod, jti="j-1"))
    claims = payload(tok)
    assert claims["iss"] == tokens.ISSUER
    assert claims["sub"] == "system:serviceaccount:ns:sa"
    assert claims["aud"] == ["istio-ca"]
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"] == {
        "namespace": "ns",
        "pod": {"name": "p", "uid": pod["metadata"]["uid"]},
        "serviceaccount": {"name": "sa", "uid": acct["metadata"]["uid"]},
    }
    assert jwt.get_unverified_header(tok) == {"alg": "RS256", "kid": key.kid}

    v = tokens.Verifier(key, st)
    found = await v.authenticate(tok, now, ["istio-ca"])
    assert found is not None
    info, auds = found
    assert auds == ("istio-ca",)
    user = info.user_info(auds)
    assert user.username == "system:serviceaccount:ns:sa"
    assert user.uid == acct["metadata"]["uid"]
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")
    assert user.extra == {
        tokens.EXTRA_POD_NAME: ("p",),
        tokens.EXTRA_POD_UID: (pod["metadata"]["uid"],),
        tokens.EXTRA_CREDENTIAL_ID: ("JTI=j-1",),
    }


async def test_audience_must_intersect(st: store.Store) -> None:
    key = tokens.generate_key()
    acct = await sa(st)
    now = time.time()
    tok = key.sign(tokens.bound_claims(acct, ["istio-ca"], 3600, now))
    v = tokens.Verifier(key, st)
    with pytest.raises(errors.TokenError) as e:
        await v.authenticate(tok, now)  # API audiences by default
    assert str(e.value) == (
        'token audiences ["istio-ca"] is invalid for the target audiences '
        '["https://kubernetes.default.svc.cluster.local"]'
    )


async def test_expiry_honours_kubernetes_leeway(st: store.Store) -> None:
    key = tokens.generate_key()
    acct = await sa(st)
    now = time.time()
    tok = key.sign(tokens.bound_claims(acct, list(tokens.API_AUDIENCES), 600, now))
    v = tokens.Verifier(key, st)
    assert await v.authenticate(tok, now + 600 + 30) is not None  # within go-jose's 60 s leeway
    with pytest.raises(errors.TokenError, match=r"^service account token has expired$"):
        await v.authenticate(tok, now + 600 + 61)
    with pytest.raises(errors.TokenError, match=r"^service account token is not valid yet$"):
        await v.authenticate(tok, now - 120)


async def test_forged_and_foreign_tokens(st: store.Store) -> None:
    key, other = tokens.generate_key(), tokens.generate_key()
    acct = await sa(st)
    now = time.time()
    claims = tokens.bound_claims(acct, list(tokens.API_AUDIENCES), 600, now)
    v = tokens.Verifier(key, st)
    with pytest.raises(errors.TokenError, match=r"^invalid signature, no keys found$"):
        await v.authenticate(other.sign(claims), now)
    # a forger who copies our kid still fails the signature check
    forged = jwt.encode(claims, other.private, algorithm="RS256", headers={"kid": key.kid})
    with pytest.raises(errors.TokenError, match="cryptographic primitive"):
        await v.authenticate(forged, now)
    # an HMAC token "signed" with the public key is refused too (algorithm confusion)
    with pytest.raises(errors.TokenError):
        await v.authenticate(jwt.encode(claims, "s" * 40, algorithm="HS256"), now)
    # not ours at all: other issuer, not a JWT
    assert await v.authenticate(other.sign({**claims, "iss": "https://elsewhere"}), now) is None
    assert await v.authenticate("not-a-jwt", now) is None
    assert await v.authenticate("a.b.c", now) is None


async def test_deleted_or_replaced_objects_invalidate(st: store.Store) -> None:
    key = tokens.generate_key()
    v = tokens.Verifier(key, st)
    now = time.time()
    acct = await sa(st)
    pod = await make(st, "pods", {"metadata": {"namespace": "ns", "name": "p"}, "spec": {}})
    tok = key.sign(tokens.bound_claims(acct, list(tokens.API_AUDIENCES), 3600, now, pod=pod))
    assert await v.authenticate(tok, now) is not None

    await st.delete("pods", "ns", "p")
    with pytest.raises(errors.TokenError, match=r"^service account token has been invalidated$"):
        await v.authenticate(tok, now)
    new_pod = await make(st, "pods", {"metadata": {"namespace": "ns", "name": "p"}, "spec": {}})
    with pytest.raises(
        errors.TokenError, match=r"^pod UID \(.*\) does not match service account pod ref claim"
    ):
        await v.authenticate(tok, now)

    tok2 = key.sign(tokens.bound_claims(acct, list(tokens.API_AUDIENCES), 3600, now, pod=new_pod))
    await st.delete("serviceaccounts", "ns", "sa")
    with pytest.raises(errors.TokenError, match=r'^serviceaccounts "sa" not found$'):
        await v.authenticate(tok2, now)
    await sa(st)  # same name, new uid
    with pytest.raises(errors.TokenError, match=r"^service account UID \(.*\) does not match claim"):
        await v.authenticate(tok2, now)


async def test_legacy_token(st: store.Store) -> None:
    key = tokens.generate_key()
    v = tokens.Verifier(key, st)
    acct = await sa(st)
    tok = key.sign(tokens.legacy_claims(acct, "sa-token"))
    claims = payload(tok)
    assert "exp" not in claims and "aud" not in claims
    assert claims[tokens.LEGACY_SECRET_NAME] == "sa-token"
    assert claims["iss"] == "kubernetes/serviceaccount"
    with pytest.raises(errors.TokenError, match=r"^Token has been invalidated$"):
        await v.authenticate(tok, time.time())
    secret = {
        "metadata": {"namespace": "ns", "name": "sa-token"},
        "type": "kubernetes.io/service-account-token",
        "data": {"token": base64.b64encode(tok.encode()).decode()},
    }
    await make(st, "secrets", secret)
    found = await v.authenticate(tok, time.time() + 10 * 365 * 86400)  # never expires
    assert found is not None and found[1] == tokens.API_AUDIENCES
    assert found[0].user_info(found[1]).extra == {}
    # a token with the right claims but not the Secret's current value is refused
    other = key.sign({**tokens.legacy_claims(acct, "sa-token"), "extra": 1})
    with pytest.raises(errors.TokenError, match=r"^Token does not match server's copy$"):
        await v.authenticate(other, time.time())


def test_signing_key_persists_with_0600(tmp_path: Path) -> None:
    k1 = tokens.load_or_create_key(tmp_path)
    mode = stat.S_IMODE((tmp_path / tokens.KEY_FILE).stat().st_mode)
    assert mode == 0o600
    k2 = tokens.load_or_create_key(tmp_path)
    assert k1.kid == k2.kid
    assert tokens.load_or_create_key(None).kid != k1.kid


def test_kid_is_kubernetes_key_id() -> None:
    from cryptography.hazmat.primitives import hashes, serialization

    key = tokens.generate_key()
    der = key.private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    h = hashes.Hash(hashes.SHA256())
    h.update(der)
    assert key.kid == base64.urlsafe_b64encode(h.finalize()).decode().rstrip("=")


_KEY = tokens.generate_key()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=hs.one_of(
        hs.text(max_size=300),
        hs.lists(
            hs.text(
                alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=80
            ),
            min_size=1,
            max_size=5,
        ).map(".".join),
        hs.dictionaries(
            hs.sampled_from(["iss", "aud", "exp", "nbf", "kubernetes.io", "sub", tokens.LEGACY_SA_NAME]),
            hs.one_of(hs.none(), hs.integers(), hs.text(max_size=10), hs.lists(hs.integers())),
        )
        .map(lambda c: {**c, "iss": c.get("iss") if isinstance(c.get("iss"), str) else tokens.ISSUER})
        .map(_KEY.sign),
    )
)
async def test_garbage_tokens_never_crash(st: store.Store, text: str) -> None:
    v = tokens.Verifier(_KEY, st)
    try:
        await v.authenticate(text, time.time())
    except errors.TokenError:
        pass
