"""RequestAuthentication → Envoy's `envoy.filters.http.jwt_authn`, as Istio builds it
(pilot/pkg/security/authn/policy_applier.go convertToEnvoyJwtConfig): one provider per jwtRule
(`origins-N`) with its issuer, audiences, inline JWKS, token locations (Envoy's defaults, the
`Authorization: Bearer` header and the `access_token` parameter, when none are given),
`forward` and `forward_payload_header`; one rule for every path requiring any provider or no
token at all (`allow_missing`): a request without a token passes on to RBAC, one with a token no
provider accepts gets 401. CORS preflights bypass the check, as Istio sets.

The verified payload goes into the filter's dynamic metadata under `payload` (Istio's own
istio_authn filter, which upstream Envoy lacks, does this step there); xds/rbac.py matches
`requestPrincipals` (`iss/sub`) against it.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from google.protobuf import empty_pb2

from meshplane.policy import reqauthn
from meshplane.xds import protos

FILTER = "envoy.filters.http.jwt_authn"
PAYLOAD_KEY = "payload"


def _provider(rule: reqauthn.JwtRule) -> config_pb2.JwtProvider:
    p = config_pb2.JwtProvider(
        issuer=rule.issuer,
        audiences=list(rule.audiences),
        local_jwks=base_pb2.DataSource(inline_string=rule.jwks),
        forward=rule.forward_original_token,
        forward_payload_header=rule.output_payload_to_header,
        payload_in_metadata=PAYLOAD_KEY,
        from_params=list(rule.from_params),
    )
    for name, prefix in rule.from_headers:
        p.from_headers.append(config_pb2.JwtHeader(name=name, value_prefix=prefix))
    return p


def http_filters(policies: Sequence[reqauthn.RequestAuthentication]) -> list[hcm_pb2.HttpFilter]:
    rules = [rule for p in policies for rule in p.rules]
    if not rules:
        return []
    cfg = config_pb2.JwtAuthentication(bypass_cors_preflight=True)
    names = []
    for i, rule in enumerate(rules):
        name = f"origins-{i}"
        cfg.providers[name].CopyFrom(_provider(rule))
        names.append(name)
    requirements = [config_pb2.JwtRequirement(provider_name=n) for n in names]
    requirements.append(config_pb2.JwtRequirement(allow_missing=empty_pb2.Empty()))
    cfg.rules.append(
        config_pb2.RequirementRule(
            match=route_components_pb2.RouteMatch(prefix="/"),
            requires=config_pb2.JwtRequirement(
                requires_any=config_pb2.JwtRequirementOrList(requirements=requirements)
            ),
        )
    )
    return [hcm_pb2.HttpFilter(name=FILTER, typed_config=protos.to_any(cfg))]
