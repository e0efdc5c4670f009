"""Istio's RequestAuthentication (security.istio.io): which JWTs a workload accepts.

Parsed and validated as istio/api security/v1beta1/request_authentication.proto and
pilot/pkg/config/validation (ValidateRequestAuthentication): `selector`, `jwtRules[]` with
`issuer` (required, unique per policy), `audiences`, `jwks` (inline JWKS JSON, checked to hold a
`keys` list), `fromHeaders` (`name` required, optional `prefix`), `fromParams`,
`outputPayloadToHeader`, `forwardOriginalToken`. Refused with the field named: `jwksUri` (the
control plane does not fetch keys yet: give them inline with `jwks`), `fromCookies`,
`outputClaimToHeaders`, `timeout`, `targetRef(s)`; a rule needs `jwks`.

As Istio, a request without a token passes (an AuthorizationPolicy decides, e.g. with
`requestPrincipals: ["*"]`), one with an invalid token (bad signature, expired, wrong issuer or
audience) gets 401. The policies that apply to a workload are selected like AuthorizationPolicy's
(root namespace and the workload's namespace, by selector).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.model import crfields
from meshplane.policy import objects, selector

KIND = "RequestAuthentication"
_RULE_FIELDS = ("issuer", "audiences", "jwks", "fromHeaders", "fromParams", "outputPayloadToHeader",
                "forwardOriginalToken")  # fmt: skip
_REFUSED = {
    "jwksUri": "is not fetched by meshplane yet; give the keys inline with jwks",
    "fromCookies": "is not implemented by meshplane",
    "outputClaimToHeaders": "is not implemented by meshplane",
    "timeout": "is not implemented by meshplane",
}


@dataclass(frozen=True, slots=True)
class JwtRule:
    issuer: str
    jwks: str  # the JWKS document, as given
    audiences: tuple[str, ...] = ()
    from_headers: tuple[tuple[str, str], ...] = ()  # (name, prefix)
    from_params: tuple[str, ...] = ()
    output_payload_to_header: str = ""
    forward_original_token: bool = False


@dataclass(frozen=True, slots=True)
class RequestAuthentication:
    name: str
    namespace: str
    selector: Mapping[str, str]
    rules: tuple[JwtRule, ...]
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __hash__(self) -> int:
        return hash((self.namespace, self.name, self.rules, self.created))


def _rule(r: crfields.Reader, raw: object, path: str) -> JwtRule:
    if not isinstance(raw, Mapping):
        raise r.fail(path, f"must be an object, got {type(raw).__name__}")
    for key in sorted(raw):
        if key in _REFUSED:
            raise r.fail(f"{path}.{key}", _REFUSED[key])
        if key not in _RULE_FIELDS:
            raise r.fail(f"{path}.{key}", "unknown field")
    issuer = r.text(raw, "issuer", path, required=True)
    jwks = r.text(raw, "jwks", path, required=True)
    try:
        doc = json.loads(jwks)
    except ValueError as e:
        raise r.fail(f"{path}.jwks", f"is not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list) or not doc["keys"]:
        raise r.fail(f"{path}.jwks", "must be a JWKS document with a non-empty keys list")
    headers = []
    for i, h in enumerate(r.items(raw, "fromHeaders", path)):
        hpath = f"{path}.fromHeaders[{i}]"
        if not isinstance(h, Mapping):
            raise r.fail(hpath, "must be an object")
        headers.append((r.text(h, "name", hpath, required=True), r.text(h, "prefix", hpath)))
    forward = raw.get("forwardOriginalToken", False)
    if not isinstance(forward, bool):
        raise r.fail(f"{path}.forwardOriginalToken", "must be a boolean")
    return JwtRule(
        issuer,
        jwks,
        r.texts(raw, "audiences", path),
        tuple(headers),
        r.texts(raw, "fromParams", path),
        r.text(raw, "outputPayloadToHeader", path),
        forward,
    )


def parse(obj: Mapping[str, Any], default_namespace: str = "default") -> RequestAuthentication:
    meta, spec = objects.meta(obj, KIND, default_namespace)
    r = crfields.Reader(meta.ref)
    for key in sorted(spec):
        if key in ("targetRef", "targetRefs"):
            raise r.fail(
                f"spec.{key}", "is not implemented by meshplane; select the workload with spec.selector"
            )
        if key not in ("selector", "jwtRules"):
            raise r.fail(f"spec.{key}", "unknown field")
    sel = selector.parse(r, spec)
    rules = tuple(_rule(r, x, f"spec.jwtRules[{i}]") for i, x in enumerate(r.items(spec, "jwtRules", "spec")))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.issuer in seen:
            raise r.fail(f"spec.jwtRules[{i}].issuer", f"duplicate issuer {rule.issuer!r:.80}")
        seen.add(rule.issuer)
    return RequestAuthentication(meta.name, meta.namespace, sel, rules, meta.created)


def for_workload(
    policies: Iterable[RequestAuthentication], root_namespace: str, namespace: str, labels: Mapping[str, str]
) -> tuple[RequestAuthentication, ...]:
    return tuple(
        p
        for p in policies
        if p.namespace in (root_namespace, namespace) and selector.selects(p.selector, labels)
    )
