"""Istio's VirtualService (networking.istio.io): routes bound to gateways.

Parsed: `hosts`, `gateways`, `http` (uri/authority/port matches, weighted destinations, timeout),
`tls` (sniHosts/port matches) and `tcp` (port matches). Destination hosts are resolved the way
Istio does (`ResolveShortnameToFQDN`): a name without dots gets `.NAMESPACE.svc.DOMAIN` appended.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from meshplane.model import crfields as fields
from meshplane.model.ids import DEFAULT_DOMAIN
from meshplane.networking import hosts, objects
from meshplane.runtime import ipaddr

MESH_GATEWAY = "mesh"  # the reserved gateway name meaning "the sidecars"
_DURATION = re.compile(r"^(\d+(\.\d+)?)(ms|s|m|h)$")


class MatchKind(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"


@dataclass(frozen=True, slots=True)
class StringMatch:
    kind: MatchKind
    value: str


@dataclass(frozen=True, slots=True)
class Destination:
    host: str  # resolved FQDN (or `*`, or an IP)
    port: int = 0  # 0: the service's only port
    subset: str = ""


@dataclass(frozen=True, slots=True)
class RouteDestination:
    destination: Destination
    weight: int | None = None


@dataclass(frozen=True, slots=True)
class HTTPMatch:
    uri: StringMatch | None = None
    authority: StringMatch | None = None
    port: int = 0
    gateways: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HTTPRoute:
    matches: tuple[HTTPMatch, ...]
    routes: tuple[RouteDestination, ...]
    name: str = ""
    timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class L4Match:
    """A `tls` match (sniHosts, port) or a `tcp` match (port)."""

    sni_hosts: tuple[str, ...] = ()
    port: int = 0
    gateways: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class L4Route:
    matches: tuple[L4Match, ...]
    routes: tuple[RouteDestination, ...]


@dataclass(frozen=True, slots=True)
class VirtualService:
    name: str
    namespace: str
    hosts: tuple[str, ...]
    gateways: tuple[str, ...]  # resolved to `namespace/name` (or `mesh`)
    http: tuple[HTTPRoute, ...] = ()
    tls: tuple[L4Route, ...] = ()
    tcp: tuple[L4Route, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def resolve_host(host: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    if host == "*" or "." in host:
        return host
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        return f"{host}.{namespace}.svc.{domain}"


def resolve_gateway(name: str, namespace: str) -> str:
    """`ns/name` as is; legacy `name.ns.svc...` to `ns/name`; a bare name is in the VS's namespace."""
    if name == MESH_GATEWAY or "/" in name:
        return name
    if "." in name:
        parts = name.split(".")
        return f"{parts[1]}/{parts[0]}"
    return f"{namespace}/{name}"


def parse(
    obj: Mapping[str, Any], default_namespace: str = "default", domain: str = DEFAULT_DOMAIN
) -> VirtualService:
    meta, spec = objects.meta(obj, "VirtualService", default_namespace)
    p = _Parser(fields.Reader(meta.ref), meta.namespace, domain)
    host_list = p.r.texts(spec, "hosts", "spec", required=True)
    for i, h in enumerate(host_list):
        problem = hosts.check_host(h)
        if problem:
            raise p.r.fail(f"spec.hosts[{i}]", problem)
    gateways = tuple(resolve_gateway(g, meta.namespace) for g in p.r.texts(spec, "gateways", "spec"))
    http = tuple(p.http_route(x, f"spec.http[{i}]") for i, x in enumerate(p.r.items(spec, "http", "spec")))
    tls = tuple(p.l4_route(x, f"spec.tls[{i}]", True) for i, x in enumerate(p.r.items(spec, "tls", "spec")))
    tcp = tuple(p.l4_route(x, f"spec.tcp[{i}]", False) for i, x in enumerate(p.r.items(spec, "tcp", "spec")))
    return VirtualService(meta.name, meta.namespace, host_list, gateways or (MESH_GATEWAY,), http, tls, tcp)


@dataclass(frozen=True, slots=True)
class _Parser:
    r: fields.Reader
    namespace: str
    domain: str

    def _obj(self, raw: object, path: str) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            raise self.r.fail(path, f"must be an object, got {type(raw).__name__}")
        return raw

    def string_match(self, parent: Mapping[str, Any], key: str, path: str) -> StringMatch | None:
        if parent.get(key) is None:
            return None
        raw = self.r.obj(parent, key, path)
        mpath = f"{path}.{key}"
        present = [k for k in MatchKind if k.value in raw]
        if len(present) != 1:
            raise self.r.fail(mpath, "must have exactly one of exact, prefix, regex")
        kind = present[0]
        value = self.r.text(raw, kind.value, mpath)
        if kind is MatchKind.REGEX:
            try:
                re.compile(value)
            except re.error as e:
                raise self.r.fail(f"{mpath}.regex", f"invalid regular expression: {e}") from None
        return StringMatch(kind, value)

    def routes(self, parent: Mapping[str, Any], path: str) -> tuple[RouteDestination, ...]:
        out = []
        items = self.r.items(parent, "route", path, required=True)
        for i, raw in enumerate(items):
            rpath = f"{path}.route[{i}]"
            item = self._obj(raw, rpath)
            dest = self.r.obj(item, "destination", rpath, required=True)
            dpath = f"{rpath}.destination"
            host = self.r.text(dest, "host", dpath, required=True)
            problem = hosts.check_host(host)
            if problem and not ipaddr.is_ip(host):
                raise self.r.fail(f"{dpath}.host", problem)
            port = self.r.port(self.r.obj(dest, "port", dpath), "number", f"{dpath}.port")
            weight = self.r.integer(item, "weight", rpath, 0, 100)
            out.append(
                RouteDestination(
                    Destination(
                        resolve_host(host, self.namespace, self.domain),
                        port,
                        self.r.text(dest, "subset", dpath),
                    ),
                    weight,
                )
            )
        weights = [d.weight for d in out]
        if len(out) > 1 and any(w is not None for w in weights) and sum(w or 0 for w in weights) != 100:
            raise self.r.fail(
                f"{path}.route", f"weights must add up to 100, got {sum(w or 0 for w in weights)}"
            )
        return tuple(out)

    def gateways(self, parent: Mapping[str, Any], path: str) -> tuple[str, ...]:
        return tuple(resolve_gateway(g, self.namespace) for g in self.r.texts(parent, "gateways", path))

    def http_route(self, raw: object, path: str) -> HTTPRoute:
        item = self._obj(raw, path)
        matches = []
        for i, m in enumerate(self.r.items(item, "match", path)):
            mpath = f"{path}.match[{i}]"
            mobj = self._obj(m, mpath)
            matches.append(
                HTTPMatch(
                    self.string_match(mobj, "uri", mpath),
                    self.string_match(mobj, "authority", mpath),
                    self.r.port(mobj, "port", mpath),
                    self.gateways(mobj, mpath),
                )
            )
        timeout = None
        if item.get("timeout") is not None:
            text = self.r.text(item, "timeout", path)
            found = _DURATION.match(text)
            if not found:
                raise self.r.fail(
                    f"{path}.timeout", f"must be a duration like 1.5s or 100ms, got {text!r:.40}"
                )
            scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[found.group(3)]
            timeout = float(found.group(1)) * scale
        return HTTPRoute(tuple(matches), self.routes(item, path), self.r.text(item, "name", path), timeout)

    def l4_route(self, raw: object, path: str, tls: bool) -> L4Route:
        item = self._obj(raw, path)
        matches = []
        for i, m in enumerate(self.r.items(item, "match", path, required=tls)):
            mpath = f"{path}.match[{i}]"
            mobj = self._obj(m, mpath)
            sni: tuple[str, ...] = ()
            if tls:
                sni = self.r.texts(mobj, "sniHosts", mpath, required=True)
                for j, h in enumerate(sni):
                    problem = hosts.check_host(h)
                    if problem:
                        raise self.r.fail(f"{mpath}.sniHosts[{j}]", problem)
            matches.append(L4Match(sni, self.r.port(mobj, "port", mpath), self.gateways(mobj, mpath)))
        return L4Route(tuple(matches), self.routes(item, path))
