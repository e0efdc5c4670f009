"""Istio's AuthorizationPolicy (security.istio.io): who may call a workload, and what.

Parsed and validated as istio/api security/v1beta1/authorization.proto and pilot/pkg/config/
validation (ValidateAuthorizationPolicy): `selector`, `action` (ALLOW, the default; DENY; AUDIT),
`rules[].from[].source` (principals, namespaces, ipBlocks, remoteIpBlocks and their `not` forms),
`rules[].to[].operation` (hosts, ports, methods, paths and their `not` forms) and `rules[].when[]`
(the keys of pilot/pkg/security/authz/model/model.go listed in `WHEN_KEYS`). Every list given must
not be empty, every value must be non-empty, and a `*` wildcard is only allowed as a prefix or a
suffix (Istio's validateWildcard).

Refused with the field named, because meshplane does not implement them: `action: CUSTOM`
(external authorization), `provider`, `targetRef`/`targetRefs` (use `selector`), the
`request.auth.*` keys of `when` (requestPrincipals are supported), path templates (`{*}`, `{**}`),
and the experimental `experimental.envoy.filters.*` keys.

An invalid DENY policy fails closed: `deny_all_stand_in` denies everything for the workloads it
selects (policy/config.py puts it in place of the policy and still reports the error).

Which policies apply to a workload is Istio's getConfigsForWorkload: those in the root namespace
and those in the workload's namespace whose selector (empty: all) picks the workload's labels.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from meshplane.model import crfields
from meshplane.policy import objects, selector

KIND = "AuthorizationPolicy"


class Action(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    AUDIT = "AUDIT"


SOURCE_FIELDS = ("principals", "namespaces", "ipBlocks", "remoteIpBlocks", "requestPrincipals")
OPERATION_FIELDS = ("hosts", "ports", "methods", "paths")
# `when` keys (pilot/pkg/security/authz/model/model.go) meshplane generates
WHEN_KEYS = (
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "destination.ip",
    "destination.port",
    "connection.sni",
)
WHEN_HEADER = "request.headers"
_HEADER_KEY = re.compile(r"^request\.headers\[([^\[\]]+)\]$")


@dataclass(frozen=True, slots=True)
class Values:
    """One attribute of a rule: `values` (any matches) and `not_values` (none may match)."""

    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.values or self.not_values)


@dataclass(frozen=True, slots=True)
class Source:
    principals: Values = Values()
    namespaces: Values = Values()
    ip_blocks: Values = Values()
    remote_ip_blocks: Values = Values()
    request_principals: Values = Values()  # `ISSUER/SUBJECT` of a JWT RequestAuthentication verified


@dataclass(frozen=True, slots=True)
class Operation:
    hosts: Values = Values()
    ports: Values = Values()
    methods: Values = Values()
    paths: Values = Values()


@dataclass(frozen=True, slots=True)
class Condition:
    key: str  # `source.ip`, `request.headers[x-token]`, ...
    values: Values


@dataclass(frozen=True, slots=True)
class Rule:
    sources: tuple[Source, ...] = ()  # empty: any source
    operations: tuple[Operation, ...] = ()  # empty: any operation
    when: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    name: str
    namespace: str
    selector: Mapping[str, str]
    action: Action
    rules: tuple[Rule, ...]
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __hash__(self) -> int:
        return hash((self.namespace, self.name, self.action, self.rules, self.created))


def _check_wildcard(r: crfields.Reader, path: str, value: str) -> None:
    if "*" in value[1:-1] or (value.count("*") > 1 and value != "*"):
        raise r.fail(path, f"wildcard * is only allowed as a prefix or a suffix, got {value!r:.80}")


def _check_ip(r: crfields.Reader, path: str, value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise r.fail(path, f"must be an IP address or CIDR, got {value!r:.60}") from None


def _check_port(r: crfields.Reader, path: str, value: str) -> None:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise r.fail(path, f"must be a port in 1-65535, got {value!r:.20}")


def _check_path(r: crfields.Reader, path: str, value: str) -> None:
    if "{" in value or "}" in value:
        raise r.fail(path, "path templates ({*}, {**}) are not implemented by meshplane")
    _check_wildcard(r, path, value)


_CHECKS = {
    "principals": _check_wildcard,
    "namespaces": _check_wildcard,
    "ipBlocks": _check_ip,
    "remoteIpBlocks": _check_ip,
    "requestPrincipals": _check_wildcard,
    "hosts": _check_wildcard,
    "ports": _check_port,
    "methods": _check_wildcard,
    "paths": _check_path,
}


def _values(r: crfields.Reader, raw: Mapping[str, Any], name: str, path: str) -> Values:
    not_name = "not" + name[0].upper() + name[1:]
    out = []
    for key in (name, not_name):
        if key in raw and not raw[key]:
            raise r.fail(f"{path}.{key}", "must not be empty when given")
        items = r.texts(raw, key, path)
        for i, v in enumerate(items):
            _CHECKS[name](r, f"{path}.{key}[{i}]", v)
        out.append(items)
    return Values(out[0], out[1])


def _known(r: crfields.Reader, raw: Mapping[str, Any], path: str, fields: Iterable[str]) -> None:
    allowed = set(fields)
    for key in sorted(raw):
        if key in allowed:
            continue
        raise r.fail(f"{path}.{key}", "unknown field")


def _source(r: crfields.Reader, raw: object, path: str) -> Source:
    if not isinstance(raw, Mapping):
        raise r.fail(path, f"must be an object, got {type(raw).__name__}")
    _known(r, raw, path, ("source",))
    src = r.obj(raw, "source", path, required=True)
    spath = f"{path}.source"
    names = [*SOURCE_FIELDS, *("not" + n[0].upper() + n[1:] for n in SOURCE_FIELDS)]
    _known(r, src, spath, names)
    out = Source(*(_values(r, src, n, spath) for n in SOURCE_FIELDS))
    if not any((out.principals, out.namespaces, out.ip_blocks, out.remote_ip_blocks, out.request_principals)):
        raise r.fail(spath, "must not be empty")
    return out


def _operation(r: crfields.Reader, raw: object, path: str) -> Operation:
    if not isinstance(raw, Mapping):
        raise r.fail(path, f"must be an object, got {type(raw).__name__}")
    _known(r, raw, path, ("operation",))
    op = r.obj(raw, "operation", path, required=True)
    opath = f"{path}.operation"
    names = [*OPERATION_FIELDS, *("not" + n[0].upper() + n[1:] for n in OPERATION_FIELDS)]
    _known(r, op, opath, names)
    out = Operation(*(_values(r, op, n, opath) for n in OPERATION_FIELDS))
    if not any((out.hosts, out.ports, out.methods, out.paths)):
        raise r.fail(opath, "must not be empty")
    return out


def _condition(r: crfields.Reader, raw: object, path: str) -> Condition:
    if not isinstance(raw, Mapping):
        raise r.fail(path, f"must be an object, got {type(raw).__name__}")
    _known(r, raw, path, ("key", "values", "notValues"))
    key = r.text(raw, "key", path, required=True)
    if key.startswith("request.auth."):
        raise r.fail(
            f"{path}.key",
            f"{key!r:.60} is not implemented by meshplane (from.source.requestPrincipals is)",
        )
    if key.startswith(WHEN_HEADER):
        if not _HEADER_KEY.match(key):
            raise r.fail(f"{path}.key", f"must be request.headers[NAME], got {key!r:.60}")
    elif key not in WHEN_KEYS:
        raise r.fail(
            f"{path}.key",
            f"unknown attribute {key!r:.60}; want request.headers[NAME] or one of {', '.join(WHEN_KEYS)}",
        )
    values = r.texts(raw, "values", path)
    not_values = r.texts(raw, "notValues", path)
    if not values and not not_values:
        raise r.fail(path, "must have values or notValues")
    for name, items in (("values", values), ("notValues", not_values)):
        for i, v in enumerate(items):
            vpath = f"{path}.{name}[{i}]"
            if key in ("source.ip", "remote.ip", "destination.ip"):
                _check_ip(r, vpath, v)
            elif key == "destination.port":
                _check_port(r, vpath, v)
            elif not key.startswith(WHEN_HEADER):
                _check_wildcard(r, vpath, v)
    return Condition(key, Values(values, not_values))


def _rule(r: crfields.Reader, raw: object, path: str) -> Rule:
    if raw is None:
        return Rule()
    if not isinstance(raw, Mapping):
        raise r.fail(path, f"must be an object, got {type(raw).__name__}")
    _known(r, raw, path, ("from", "to", "when"))
    for key in ("from", "to", "when"):
        if key in raw and isinstance(raw[key], list) and not raw[key]:
            raise r.fail(f"{path}.{key}", "must not be empty when given")
    return Rule(
        tuple(_source(r, x, f"{path}.from[{i}]") for i, x in enumerate(r.items(raw, "from", path))),
        tuple(_operation(r, x, f"{path}.to[{i}]") for i, x in enumerate(r.items(raw, "to", path))),
        tuple(_condition(r, x, f"{path}.when[{i}]") for i, x in enumerate(r.items(raw, "when", path))),
    )


def parse(obj: Mapping[str, Any], default_namespace: str = "default") -> AuthorizationPolicy:
    meta, spec = objects.meta(obj, KIND, default_namespace)
    r = crfields.Reader(meta.ref)
    for key in ("targetRef", "targetRefs"):
        if spec.get(key):
            raise r.fail(
                f"spec.{key}", "is not implemented by meshplane; select the workload with spec.selector"
            )
    if spec.get("provider") is not None:
        raise r.fail("spec.provider", "CUSTOM (external) authorization is not implemented by meshplane")
    _known(r, spec, "spec", ("selector", "action", "rules", "targetRef", "targetRefs"))
    sel = selector.parse(r, spec)
    text = r.text(spec, "action", "spec") or "ALLOW"
    if text == "CUSTOM":
        raise r.fail("spec.action", "CUSTOM (external) authorization is not implemented by meshplane")
    try:
        action = Action(text)
    except ValueError:
        raise r.fail("spec.action", f"unknown action {text!r:.40}; want ALLOW, DENY or AUDIT") from None
    rules = tuple(_rule(r, x, f"spec.rules[{i}]") for i, x in enumerate(r.items(spec, "rules", "spec")))
    return AuthorizationPolicy(meta.name, meta.namespace, sel, action, rules, meta.created)


def deny_all_stand_in(obj: Mapping[str, Any]) -> AuthorizationPolicy | None:
    """For a DENY policy that cannot be understood: a DENY of everything for the workloads it
    selects (its whole namespace when even the selector is invalid), so an invalid DENY fails
    closed instead of silently allowing what it meant to deny. None when the object is not a DENY
    policy or has no usable namespace/name."""
    spec = obj.get("spec") if isinstance(obj, Mapping) else None
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(spec, Mapping) or not isinstance(meta, Mapping) or spec.get("action") != "DENY":
        return None
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return None
    r = crfields.Reader(f"{KIND} {namespace}/{name}")
    try:
        sel = selector.parse(r, spec)
    except crfields.ConfigError:
        sel = {}
    created = meta.get("creationTimestamp")
    return AuthorizationPolicy(name, namespace, sel, Action.DENY, (Rule(),), str(created) if created else "")


def for_workload(
    policies: Iterable[AuthorizationPolicy], root_namespace: str, namespace: str, labels: Mapping[str, str]
) -> tuple[AuthorizationPolicy, ...]:
    """The policies that apply to a workload (root namespace, then its own namespace)."""
    return tuple(
        p
        for p in policies
        if p.namespace in (root_namespace, namespace) and selector.selects(p.selector, labels)
    )
