"""RequestAuthentication: what is accepted, and what is refused with the field named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshplane.model import crfields
from meshplane.policy import config, reqauthn

JWKS = json.dumps({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "k"}]})
GOOD = {"issuer": "i", "jwks": JWKS}


def ra(rules: list[Any], **spec: Any) -> dict[str, Any]:
    meta = {"name": "jwt", "namespace": "sample"}
    spec = {"jwtRules": rules, **spec}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": meta,
        "spec": spec,
    }


def test_a_rule_parses_and_applies_by_selector() -> None:
    rule = {"issuer": "https://i", "jwks": JWKS, "audiences": ["a"], "fromHeaders": [{"name": "x-jwt"}]}
    rule |= {"fromParams": ["token"], "outputPayloadToHeader": "x-payload", "forwardOriginalToken": True}
    cfg, problems = config.build([ra([rule], selector={"matchLabels": {"app": "hello"}})])
    assert problems == []
    (got,) = cfg.workload("istio-system", "sample", {"app": "hello"}).request_authentication
    assert got.rules[0] == reqauthn.JwtRule(
        "https://i", JWKS, ("a",), (("x-jwt", ""),), ("token",), "x-payload", True
    )
    assert cfg.workload("istio-system", "sample", {"app": "bye"}).request_authentication == ()


@pytest.mark.parametrize(
    ("rules", "path", "words"),
    [
        ([{"jwks": JWKS}], "spec.jwtRules[0].issuer", "required"),
        ([{"issuer": "i"}], "spec.jwtRules[0].jwks", "required"),
        ([{"issuer": "i", "jwks": "{"}], "spec.jwtRules[0].jwks", "not JSON"),
        ([{"issuer": "i", "jwks": "{}"}], "spec.jwtRules[0].jwks", "keys"),
        ([{"issuer": "i", "jwksUri": "https://i/keys"}], "spec.jwtRules[0].jwksUri", "inline"),
        ([GOOD, GOOD], "spec.jwtRules[1].issuer", "duplicate"),
        ([GOOD | {"fromHeaders": [{"prefix": "x"}]}], "spec.jwtRules[0].fromHeaders[0].name", "required"),
    ],
)  # fmt: skip
def test_invalid_rules_are_refused_naming_the_field(rules: list[Any], path: str, words: str) -> None:
    with pytest.raises(crfields.ConfigError) as err:
        reqauthn.parse(ra(rules))
    assert err.value.path == path and words in err.value.problem
