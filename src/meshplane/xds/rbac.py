"""AuthorizationPolicy → Envoy RBAC filters of a sidecar's inbound chains, as Istio builds them
(pilot/pkg/security/authz/builder/builder.go and model/{model,generator}.go).

Per workload, one filter per action that has policies, in the order Envoy evaluates them: AUDIT
(RBAC action LOG: marks the request for the access log, enforces nothing), DENY, then ALLOW. An
ALLOW filter exists as soon as one ALLOW policy applies, so an ALLOW policy without rules denies
everything; a request matching none of the ALLOW rules gets 403 (HTTP: `RBAC: access denied`) or
its connection closed (TCP). Each policy rule becomes RBAC policy `ns[NS]-policy[NAME]-rule[I]`:
principals (one per `from`, all of its fields ANDed, plus the source-side `when` conditions) and
permissions (one per `to`, plus the destination-side `when` conditions).

`requestPrincipals` match the JWT payload jwt_authn verified (xds/jwt.py puts it in its dynamic
metadata under `payload`). HTTP-only fields (hosts, methods, paths, request.headers,
requestPrincipals) on a TCP chain (network RBAC filter,
stat prefix `tcp.`): in an ALLOW policy the whole rule is dropped (a smaller allow, never a wider
one); in DENY and AUDIT only that value is dropped (a wider deny), as Istio's checkError does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

from envoy.config.core.v3 import address_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as net_rbac_pb2
from envoy.type.matcher.v3 import metadata_pb2, path_pb2, regex_pb2, string_pb2, value_pb2
from google.protobuf import wrappers_pb2

from meshplane.policy import authz
from meshplane.xds import jwt, protos

HTTP_RBAC = "envoy.filters.http.rbac"
NETWORK_RBAC = "envoy.filters.network.rbac"
TCP_STAT_PREFIX = "tcp."
SPIFFE = "spiffe://"
_ACTIONS = (
    (authz.Action.AUDIT, rbac_pb2.RBAC.LOG),
    (authz.Action.DENY, rbac_pb2.RBAC.DENY),
    (authz.Action.ALLOW, rbac_pb2.RBAC.ALLOW),
)

Policies = tuple[authz.AuthorizationPolicy, ...]


class _HttpOnly(Exception):
    """A field that only HTTP has, met while building a TCP filter."""


# ---- matchers (pilot/pkg/security/authz/matcher)


def _regex(pattern: str) -> string_pb2.StringMatcher:
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=pattern))


def string_matcher(value: str, prefix: str = "") -> string_pb2.StringMatcher:
    """StringMatcherWithPrefix: `*` any non-empty, `*x` suffix, `x*` prefix, else exact."""
    if value == "*":
        return _regex(".+")
    if value.startswith("*"):
        if not prefix:
            return string_pb2.StringMatcher(suffix=value[1:])
        return _regex(re.escape(prefix) + ".*" + re.escape(value[1:]))
    if value.endswith("*"):
        return string_pb2.StringMatcher(prefix=prefix + value[:-1])
    return string_pb2.StringMatcher(exact=prefix + value)


def header_matcher(name: str, value: str, ignore_case: bool = False) -> route_components_pb2.HeaderMatcher:
    """HeaderMatcher / HostMatcher: `*` present, `*x` suffix, `x*` prefix, else exact."""
    if value == "*":
        return route_components_pb2.HeaderMatcher(name=name, present_match=True)
    if value.startswith("*"):
        m = string_pb2.StringMatcher(suffix=value[1:], ignore_case=ignore_case)
    elif value.endswith("*"):
        m = string_pb2.StringMatcher(prefix=value[:-1], ignore_case=ignore_case)
    else:
        m = string_pb2.StringMatcher(exact=value, ignore_case=ignore_case)
    return route_components_pb2.HeaderMatcher(name=name, string_match=m)


def _cidr(value: str) -> address_pb2.CidrRange:
    net = ipaddress.ip_network(value, strict=False)
    return address_pb2.CidrRange(
        address_prefix=str(net.network_address), prefix_len=wrappers_pb2.UInt32Value(value=net.prefixlen)
    )


def _authenticated(m: string_pb2.StringMatcher) -> rbac_pb2.Principal:
    return rbac_pb2.Principal(authenticated=rbac_pb2.Principal.Authenticated(principal_name=m))


def _namespace(value: str) -> rbac_pb2.Principal:
    return _authenticated(_regex(f".*/ns/{value.replace('*', '.*')}/.*"))


# ---- generators: attribute value → principal or permission

PrincipalGen = Callable[[str, bool], rbac_pb2.Principal]
PermissionGen = Callable[[str, bool], rbac_pb2.Permission]


def _http_only(tcp: bool) -> None:
    if tcp:
        raise _HttpOnly


def _p_principal(v: str, tcp: bool) -> rbac_pb2.Principal:
    return _authenticated(string_matcher(v, SPIFFE))


def _p_namespace(v: str, tcp: bool) -> rbac_pb2.Principal:
    return _namespace(v)


def _p_ip(v: str, tcp: bool) -> rbac_pb2.Principal:
    return rbac_pb2.Principal(direct_remote_ip=_cidr(v))


def _p_remote_ip(v: str, tcp: bool) -> rbac_pb2.Principal:
    return rbac_pb2.Principal(remote_ip=_cidr(v))


def _jwt_claim(claim: str, m: string_pb2.StringMatcher) -> rbac_pb2.Principal:
    return rbac_pb2.Principal(
        metadata=metadata_pb2.MetadataMatcher(
            filter=jwt.FILTER,
            path=[
                metadata_pb2.MetadataMatcher.PathSegment(key=jwt.PAYLOAD_KEY),
                metadata_pb2.MetadataMatcher.PathSegment(key=claim),
            ],
            value=value_pb2.ValueMatcher(string_match=m),
        )
    )


def _p_request_principal(v: str, tcp: bool) -> rbac_pb2.Principal:
    """`ISSUER/SUBJECT` (split at the last `/`, wildcards at either end) against the verified JWT's
    payload, which jwt_authn puts in its metadata (model/generator.go requestPrincipalGenerator)."""
    _http_only(tcp)
    any_ = _regex(".+")
    idx = v.rfind("/")
    iss, sub = (v[:idx], v[idx + 1 :]) if idx >= 0 else (v, "")
    if v == "*":
        m_iss, m_sub = any_, any_
    elif v.startswith("*"):
        if idx >= 0:
            m_iss = any_ if iss == "*" else string_pb2.StringMatcher(suffix=iss[1:])
            m_sub = string_pb2.StringMatcher(exact=sub)
        else:
            m_iss, m_sub = any_, string_pb2.StringMatcher(suffix=v[1:])
    elif v.endswith("*"):
        if idx >= 0:
            m_iss = string_pb2.StringMatcher(exact=iss)
            m_sub = any_ if sub == "*" else string_pb2.StringMatcher(prefix=sub[:-1])
        else:
            m_iss, m_sub = string_pb2.StringMatcher(prefix=v[:-1]), any_
    else:
        m_iss, m_sub = string_pb2.StringMatcher(exact=iss), string_pb2.StringMatcher(exact=sub)
    return rbac_pb2.Principal(
        and_ids=rbac_pb2.Principal.Set(ids=[_jwt_claim("iss", m_iss), _jwt_claim("sub", m_sub)])
    )


def _p_header(name: str) -> PrincipalGen:
    def gen(v: str, tcp: bool) -> rbac_pb2.Principal:
        _http_only(tcp)
        return rbac_pb2.Principal(header=header_matcher(name, v))

    return gen


def _q_host(v: str, tcp: bool) -> rbac_pb2.Permission:
    _http_only(tcp)
    return rbac_pb2.Permission(header=header_matcher(":authority", v, ignore_case=True))


def _q_method(v: str, tcp: bool) -> rbac_pb2.Permission:
    _http_only(tcp)
    return rbac_pb2.Permission(header=header_matcher(":method", v))


def _q_path(v: str, tcp: bool) -> rbac_pb2.Permission:
    _http_only(tcp)
    return rbac_pb2.Permission(url_path=path_pb2.PathMatcher(path=string_matcher(v)))


def _q_port(v: str, tcp: bool) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(destination_port=int(v))


def _q_ip(v: str, tcp: bool) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(destination_ip=_cidr(v))


def _q_sni(v: str, tcp: bool) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(requested_server_name=string_matcher(v))


_WHEN_PRINCIPAL: dict[str, PrincipalGen] = {
    "source.ip": _p_ip,
    "remote.ip": _p_remote_ip,
    "source.namespace": _p_namespace,
    "source.principal": _p_principal,
}
_WHEN_PERMISSION: dict[str, PermissionGen] = {
    "destination.ip": _q_ip,
    "destination.port": _q_port,
    "connection.sni": _q_sni,
}


def _or_principal(ids: list[rbac_pb2.Principal]) -> rbac_pb2.Principal:
    return rbac_pb2.Principal(or_ids=rbac_pb2.Principal.Set(ids=ids))


def _or_permission(rules: list[rbac_pb2.Permission]) -> rbac_pb2.Permission:
    return rbac_pb2.Permission(or_rules=rbac_pb2.Permission.Set(rules=rules))


class _Gen:
    """Builds one rule for one action; `strict` (ALLOW) lets an HTTP-only value on TCP drop the rule."""

    def __init__(self, tcp: bool, strict: bool) -> None:
        self.tcp = tcp
        self.strict = strict

    def _each(self, gen: Callable[[str, bool], object], values: Sequence[str]) -> list[object]:
        out = []
        for v in values:
            try:
                out.append(gen(v, self.tcp))
            except _HttpOnly:
                if self.strict:
                    raise
        return out

    def principals(self, gen: PrincipalGen, vals: authz.Values) -> list[rbac_pb2.Principal]:
        out: list[rbac_pb2.Principal] = []
        yes = self._each(gen, vals.values)
        if yes:
            out.append(_or_principal(yes))  # type: ignore[arg-type]
        no = self._each(gen, vals.not_values)
        if no:
            out.append(rbac_pb2.Principal(not_id=_or_principal(no)))  # type: ignore[arg-type]
        return out

    def permissions(self, gen: PermissionGen, vals: authz.Values) -> list[rbac_pb2.Permission]:
        out: list[rbac_pb2.Permission] = []
        yes = self._each(gen, vals.values)
        if yes:
            out.append(_or_permission(yes))  # type: ignore[arg-type]
        no = self._each(gen, vals.not_values)
        if no:
            out.append(rbac_pb2.Permission(not_rule=_or_permission(no)))  # type: ignore[arg-type]
        return out

    def policy(self, rule: authz.Rule) -> rbac_pb2.Policy:
        base_principal: list[rbac_pb2.Principal] = []
        base_permission: list[rbac_pb2.Permission] = []
        for cond in rule.when:
            if cond.key in _WHEN_PERMISSION:
                base_permission += self.permissions(_WHEN_PERMISSION[cond.key], cond.values)
            elif cond.key in _WHEN_PRINCIPAL:
                base_principal += self.principals(_WHEN_PRINCIPAL[cond.key], cond.values)
            else:  # request.headers[NAME] (authz.parse admits no other key)
                header = cond.key[len(authz.WHEN_HEADER) + 1 : -1]
                base_principal += self.principals(_p_header(header), cond.values)
        principals = []
        for src in rule.sources or (None,):
            ids: list[rbac_pb2.Principal] = []
            if src is not None:
                ids += self.principals(_p_principal, src.principals)
                ids += self.principals(_p_request_principal, src.request_principals)
                ids += self.principals(_p_namespace, src.namespaces)
                ids += self.principals(_p_remote_ip, src.remote_ip_blocks)
                ids += self.principals(_p_ip, src.ip_blocks)
            ids += base_principal
            principals.append(
                rbac_pb2.Principal(and_ids=rbac_pb2.Principal.Set(ids=ids or [rbac_pb2.Principal(any=True)]))
            )
        permissions = []
        for op in rule.operations or (None,):
            rules: list[rbac_pb2.Permission] = []
            if op is not None:
                rules += self.permissions(_q_host, op.hosts)
                rules += self.permissions(_q_method, op.methods)
                rules += self.permissions(_q_path, op.paths)
                rules += self.permissions(_q_port, op.ports)
            rules += base_permission
            permissions.append(
                rbac_pb2.Permission(
                    and_rules=rbac_pb2.Permission.Set(rules=rules or [rbac_pb2.Permission(any=True)])
                )
            )
        return rbac_pb2.Policy(permissions=permissions, principals=principals)


def policy_name(p: authz.AuthorizationPolicy, index: int) -> str:
    return f"ns[{p.namespace}]-policy[{p.name}]-rule[{index}]"


def rules(policies: Policies, action: authz.Action, tcp: bool) -> rbac_pb2.RBAC | None:
    """The RBAC of one action, None when no policy of that action applies."""
    chosen = [p for p in policies if p.action is action]
    if not chosen:
        return None
    envoy_action = dict(_ACTIONS)[action]
    gen = _Gen(tcp, strict=action is authz.Action.ALLOW)
    out = rbac_pb2.RBAC(action=envoy_action)
    for p in chosen:
        for i, rule in enumerate(p.rules):
            try:
                built = gen.policy(rule)
            except _HttpOnly:
                continue  # ALLOW: the rule needs HTTP, so it allows nothing on TCP
            out.policies[policy_name(p, i)].CopyFrom(built)
    return out


def http_filters(policies: Policies) -> list[hcm_pb2.HttpFilter]:
    out = []
    for action, _ in _ACTIONS:
        r = rules(policies, action, tcp=False)
        if r is not None:
            out.append(
                hcm_pb2.HttpFilter(name=HTTP_RBAC, typed_config=protos.to_any(http_rbac_pb2.RBAC(rules=r)))
            )
    return out


def network_filters(policies: Policies) -> list[listener_components_pb2.Filter]:
    out = []
    for action, _ in _ACTIONS:
        r = rules(policies, action, tcp=True)
        if r is not None:
            cfg = net_rbac_pb2.RBAC(rules=r, stat_prefix=TCP_STAT_PREFIX)
            out.append(listener_components_pb2.Filter(name=NETWORK_RBAC, typed_config=protos.to_any(cfg)))
    return out
