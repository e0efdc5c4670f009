"""Hypothesis strategies shared by fuzz tests."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import strategies as st

SCALARS = st.none() | st.booleans() | st.integers(-5, 300) | st.text(max_size=8)


def json_values(scalars: st.SearchStrategy[Any] = SCALARS, *, max_leaves: int = 15) -> st.SearchStrategy[Any]:
    """Any small JSON document built from `scalars`: what a junk file or a junk field may hold."""
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=max_leaves,
    )


# ---- valid Istio security policies (security.istio.io), as a user writes them

_WILD = st.sampled_from(["", "*", "prefix*", "*suffix"])
_NAME = st.sampled_from(["sleep", "httpbin", "a-b", "x1"])


def _wild(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def combine(pair: tuple[str, str]) -> str:
        b, w = pair
        return "*" if w == "*" else b + "*" if w == "prefix*" else "*" + b if w == "*suffix" else b

    return st.tuples(base, _WILD).map(combine)


_PRINCIPALS = _wild(_NAME.map(lambda sa: f"cluster.local/ns/sample/sa/{sa}"))
_NAMESPACES = _wild(st.sampled_from(["sample", "istio-system", "other"]))
_CIDRS = st.sampled_from(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "198.19.0.0/16"])
_PORTS = st.integers(1, 65535).map(str)
_METHODS = _wild(st.sampled_from(["GET", "POST", "DELETE"]))
_PATHS = _wild(st.sampled_from(["/admin", "/api/v1", "/"]))
_HOSTS = _wild(st.sampled_from(["example.com", "helloworld.sample.svc.cluster.local"]))


def _fields(spec: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[dict[str, list[str]]]:
    one = st.lists(st.sampled_from(sorted(spec)), min_size=1, max_size=3, unique=True)
    return one.flatmap(
        lambda keys: st.fixed_dictionaries({k: st.lists(spec[k], min_size=1, max_size=3) for k in keys})
    )


def _not_too(spec: dict[str, st.SearchStrategy[str]]) -> dict[str, st.SearchStrategy[str]]:
    return {**spec, **{"not" + k[0].upper() + k[1:]: v for k, v in spec.items()}}


SOURCES = _fields(
    _not_too(
        {"principals": _PRINCIPALS, "namespaces": _NAMESPACES, "ipBlocks": _CIDRS, "remoteIpBlocks": _CIDRS}
    )
)
OPERATIONS = _fields(_not_too({"hosts": _HOSTS, "ports": _PORTS, "methods": _METHODS, "paths": _PATHS}))
_WHEN_VALUES: dict[str, st.SearchStrategy[str]] = {
    "source.ip": _CIDRS,
    "remote.ip": _CIDRS,
    "destination.ip": _CIDRS,
    "destination.port": _PORTS,
    "source.namespace": _NAMESPACES,
    "source.principal": _PRINCIPALS,
    "connection.sni": _HOSTS,
    "request.headers[x-token]": st.sampled_from(["abc", "*", "v*", "*z"]),
}
CONDITIONS = st.sampled_from(sorted(_WHEN_VALUES)).flatmap(
    lambda key: st.fixed_dictionaries(
        {"key": st.just(key)},
        optional={
            "values": st.lists(_WHEN_VALUES[key], min_size=1, max_size=2),
            "notValues": st.lists(_WHEN_VALUES[key], min_size=1, max_size=2),
        },
    ).filter(lambda c: "values" in c or "notValues" in c)
)
RULES = st.fixed_dictionaries(
    {},
    optional={
        "from": st.lists(SOURCES.map(lambda s: {"source": s}), min_size=1, max_size=2),
        "to": st.lists(OPERATIONS.map(lambda o: {"operation": o}), min_size=1, max_size=2),
        "when": st.lists(CONDITIONS, min_size=1, max_size=2),
    },
)


def authorization_policies(namespace: str = "sample") -> st.SearchStrategy[dict[str, Any]]:
    """A valid AuthorizationPolicy (ALLOW, DENY or AUDIT; maybe no rules, maybe a selector)."""
    spec = st.fixed_dictionaries(
        {"action": st.sampled_from(["ALLOW", "DENY", "AUDIT"])},
        optional={
            "rules": st.lists(RULES, max_size=3),
            "selector": st.just({"matchLabels": {"app": "helloworld"}}),
        },
    )
    return st.tuples(st.sampled_from([namespace, "istio-system"]), _NAME, spec).map(
        lambda t: {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": t[1], "namespace": t[0]},
            "spec": t[2],
        }
    )


def peer_authentications(namespace: str = "sample") -> st.SearchStrategy[dict[str, Any]]:
    mode = st.sampled_from(["UNSET", "DISABLE", "PERMISSIVE", "STRICT"])
    port_level = st.dictionaries(
        st.sampled_from(["5000", "9000", "8080"]), mode.map(lambda m: {"mode": m}), max_size=2
    )
    workload = st.tuples(mode, port_level).map(
        lambda t: {
            "selector": {"matchLabels": {"app": "helloworld"}},
            "mtls": {"mode": t[0]},
            **({"portLevelMtls": t[1]} if t[1] else {}),
        }
    )
    spec = mode.map(lambda m: {"mtls": {"mode": m}}) | workload
    return st.tuples(st.sampled_from([namespace, "istio-system"]), _NAME, spec).map(
        lambda t: {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": t[1], "namespace": t[0]},
            "spec": t[2],
        }
    )


@functools.cache
def _jwks() -> str:
    """A real JWKS (one RSA key), made once."""
    import base64
    import json

    from cryptography.hazmat.primitives.asymmetric import rsa

    nums = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    return json.dumps(
        {"keys": [{"kty": "RSA", "alg": "RS256", "kid": "k1", "n": b64(nums.n), "e": b64(nums.e)}]}
    )


def request_authentications(namespace: str = "sample") -> st.SearchStrategy[dict[str, Any]]:
    """A valid RequestAuthentication: one or two JWT rules with a real (inline) JWKS."""
    jwks = st.just(None).map(lambda _: _jwks())
    rule = st.tuples(st.sampled_from(["https://issuer.test", "issuer.test"]), jwks, st.booleans()).map(
        lambda t: {
            "issuer": t[0],
            "jwks": t[1],
            "forwardOriginalToken": t[2],
            "audiences": ["helloworld"],
            "fromHeaders": [{"name": "x-jwt", "prefix": "Bearer "}],
        }
    )
    spec = st.lists(rule, min_size=1, max_size=2, unique_by=lambda r: r["issuer"]).map(
        lambda rules: {"jwtRules": rules, "selector": {"matchLabels": {"app": "helloworld"}}}
    )
    return st.tuples(_NAME, spec).map(
        lambda t: {
            "apiVersion": "security.istio.io/v1",
            "kind": "RequestAuthentication",
            "metadata": {"name": t[0], "namespace": namespace},
            "spec": t[1],
        }
    )
