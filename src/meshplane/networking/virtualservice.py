"""Istio's VirtualService (networking.istio.io): HTTP routes for sidecars and gateways, TLS/TCP routes
for gateways.

Parsed (istio/api networking/v1alpha3/virtual_service.proto): `hosts`, `gateways`, `exportTo`
("." or "*"), `http` with every match field (uri/scheme/method/authority/headers/queryParams/
withoutHeaders with exact/prefix/regex, ignoreUriCase, port, sourceLabels, sourceNamespace,
gateways), weighted destinations with per-destination header operations, `redirect`,
`directResponse`, `rewrite` (uri, authority, uriRegexRewrite), `timeout`, `retries`, `fault`
(fixed delay, HTTP abort, percentages), `mirror`/`mirrors` with `mirrorPercentage`, `headers` and
`corsPolicy`; `tcp` (port) routes for sidecars and gateways, `tls` (sniHosts/port) routes for
gateways. Fields meshplane does not generate (delegate, exponential delays, gRPC aborts, TLS
routes for sidecars, ...) are refused
naming their path. Destination hosts are resolved the way Istio does (`ResolveShortnameToFQDN`):
a name without dots gets `.NAMESPACE.svc.DOMAIN` appended.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from meshplane.model import crfields as fields
from meshplane.model.ids import DEFAULT_DOMAIN
from meshplane.networking import hosts, objects
from meshplane.runtime import ipaddr

_EMPTY: Mapping[str, str] = MappingProxyType({})
MESH_GATEWAY = "mesh"  # the reserved gateway name meaning "the sidecars"

# Istio's VirtualService fields: the ones parsed here, and the ones meshplane refuses by path
# rather than silently ignore.
_SPEC = ("hosts", "gateways", "http", "tls", "tcp", "exportTo")
_HTTP = (
    "name",
    "match",
    "route",
    "redirect",
    "directResponse",
    "rewrite",
    "timeout",
    "retries",
    "fault",
    "mirror",
    "mirrors",
    "mirrorPercentage",
    "corsPolicy",
    "headers",
)
_HTTP_UNSUPPORTED = ("delegate", "mirrorPercent", "mirror_percent")
_HTTP_MATCH = (
    "name",
    "uri",
    "scheme",
    "method",
    "authority",
    "headers",
    "port",
    "sourceLabels",
    "gateways",
    "queryParams",
    "ignoreUriCase",
    "withoutHeaders",
    "sourceNamespace",
)
_HTTP_MATCH_UNSUPPORTED = ("statPrefix",)
_HTTP_DESTINATION = ("destination", "weight", "headers")
_L4_DESTINATION = ("destination", "weight")
_DESTINATION = ("host", "subset", "port")
_PORT_SELECTOR = ("number",)
_L4_ROUTE = ("match", "route")
_TLS_MATCH = ("sniHosts", "port", "gateways")
_TCP_MATCH = ("port", "gateways")
_L4_MATCH_UNSUPPORTED = ("destinationSubnets", "sourceSubnet", "sourceLabels", "sourceNamespace")
_STRING_MATCH = ("exact", "prefix", "regex")
_REDIRECT = ("uri", "authority", "port", "scheme", "redirectCode")
_REDIRECT_UNSUPPORTED = ("derivePort",)
_REWRITE = ("uri", "authority", "uriRegexRewrite")
_RETRIES = ("attempts", "perTryTimeout", "retryOn")
_RETRIES_UNSUPPORTED = ("retryRemoteLocalities", "retryIgnorePreviousHosts", "backoff")
_FAULT = ("delay", "abort")
_DELAY = ("fixedDelay", "percentage", "percent")
_DELAY_UNSUPPORTED = ("exponentialDelay",)
_ABORT = ("httpStatus", "percentage")
_ABORT_UNSUPPORTED = ("grpcStatus", "http2Error")
_HEADERS = ("request", "response")
_HEADER_OPS = ("set", "add", "remove")
_CORS = ("allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials")
_CORS_UNSUPPORTED = ("allowOrigin", "unmatchedPreflights")
_MIRROR = ("destination", "percentage")
# Envoy's RedirectAction response codes (route_components.proto RedirectResponseCode)
REDIRECT_CODES = (301, 302, 303, 307, 308)


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
    port: int = 0  # 0: the service's only port (or the port the request came in on)
    subset: str = ""


@dataclass(frozen=True, slots=True)
class HeaderOps:
    """`set` overwrites, `add` appends, `remove` drops (Istio's Headers.HeaderOperations)."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Headers:
    request: HeaderOps = HeaderOps()
    response: HeaderOps = HeaderOps()

    def __bool__(self) -> bool:
        return self != Headers()


@dataclass(frozen=True, slots=True)
class RouteDestination:
    destination: Destination
    weight: int | None = None
    headers: Headers = Headers()


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    name: str
    match: StringMatch | None  # None: the header must be present (any value)


@dataclass(frozen=True, slots=True)
class HTTPMatch:
    uri: StringMatch | None = None
    authority: StringMatch | None = None
    port: int = 0
    gateways: tuple[str, ...] = ()
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    headers: tuple[HeaderMatch, ...] = ()
    without_headers: tuple[HeaderMatch, ...] = ()
    query_params: tuple[HeaderMatch, ...] = ()
    ignore_uri_case: bool = False
    source_labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    source_namespace: str = ""
    name: str = ""

    def selects_source(self, labels: Mapping[str, str], namespace: str) -> bool:
        """Istio applies sourceLabels/sourceNamespace when it builds a proxy's routes."""
        if self.source_namespace and self.source_namespace != namespace:
            return False
        return all(labels.get(k) == v for k, v in self.source_labels.items())


@dataclass(frozen=True, slots=True)
class Redirect:
    uri: str = ""
    authority: str = ""
    port: int = 0
    scheme: str = ""
    code: int = 301


@dataclass(frozen=True, slots=True)
class DirectResponse:
    status: int
    body: str = ""


@dataclass(frozen=True, slots=True)
class Rewrite:
    uri: str | None = None
    authority: str = ""
    regex: tuple[str, str] | None = None  # uriRegexRewrite (match, rewrite)


@dataclass(frozen=True, slots=True)
class Retries:
    attempts: int
    per_try_timeout_seconds: float | None = None
    retry_on: str = ""


@dataclass(frozen=True, slots=True)
class Fault:
    delay_seconds: float | None = None
    delay_percent: float = 100.0
    abort_status: int | None = None
    abort_percent: float = 100.0


@dataclass(frozen=True, slots=True)
class Mirror:
    destination: Destination
    percent: float = 100.0


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    allow_origins: tuple[StringMatch, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: float | None = None
    allow_credentials: bool | None = None


@dataclass(frozen=True, slots=True)
class HTTPRoute:
    matches: tuple[HTTPMatch, ...]
    routes: tuple[RouteDestination, ...]
    name: str = ""
    timeout_seconds: float | None = None
    redirect: Redirect | None = None
    direct_response: DirectResponse | None = None
    rewrite: Rewrite | None = None
    retries: Retries | None = None
    fault: Fault | None = None
    mirrors: tuple[Mirror, ...] = ()
    headers: Headers = Headers()
    cors: CorsPolicy | None = None


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
    export_to: tuple[str, ...] = ()  # "." or "*"; empty means "*"
    domain: str = DEFAULT_DOMAIN

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def for_sidecars(self) -> bool:
        return MESH_GATEWAY in self.gateways

    def visible_to(self, namespace: str) -> bool:
        return not self.export_to or "*" in self.export_to or namespace == self.namespace

    def resolved_hosts(self) -> tuple[str, ...]:
        """`hosts` with short names made FQDNs in the VirtualService's namespace (as Istio does
        for sidecar routing, ResolveVirtualServiceShortnames)."""
        return tuple(resolve_host(h, self.namespace, self.domain) for h in self.hosts)


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
    p.r.only(spec, "spec", _SPEC)
    host_list = p.r.texts(spec, "hosts", "spec", required=True)
    for i, h in enumerate(host_list):
        problem = hosts.check_host(h)
        if problem:
            raise p.r.fail(f"spec.hosts[{i}]", problem)
    gateways = tuple(resolve_gateway(g, meta.namespace) for g in p.r.texts(spec, "gateways", "spec"))
    gateways = gateways or (MESH_GATEWAY,)
    export_to = p.r.texts(spec, "exportTo", "spec")
    for i, e in enumerate(export_to):
        if e not in (".", "*"):
            raise p.r.fail(f"spec.exportTo[{i}]", f"only '.' and '*' are supported, got {e!r:.60}")
    http = tuple(p.http_route(x, f"spec.http[{i}]") for i, x in enumerate(p.r.items(spec, "http", "spec")))
    tls = tuple(p.l4_route(x, f"spec.tls[{i}]", True) for i, x in enumerate(p.r.items(spec, "tls", "spec")))
    tcp = tuple(p.l4_route(x, f"spec.tcp[{i}]", False) for i, x in enumerate(p.r.items(spec, "tcp", "spec")))
    if MESH_GATEWAY in gateways:
        if "*" in host_list:  # Istio's validateVirtualService
            i = host_list.index("*")
            raise p.r.fail(
                f"spec.hosts[{i}]",
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
        if tls:
            raise p.r.fail(
                "spec.tls",
                "TLS routes for sidecars (gateways empty or 'mesh') are not supported by meshplane",
            )
    return VirtualService(meta.name, meta.namespace, host_list, gateways, http, tls, tcp, export_to, domain)


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
        return self._string_match(self.r.obj(parent, key, path), f"{path}.{key}")

    def _string_match(self, raw: Mapping[str, Any], mpath: str) -> StringMatch:
        self.r.only(raw, mpath, _STRING_MATCH)
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

    def _header_matches(
        self, parent: Mapping[str, Any], key: str, path: str, lowercase: bool
    ) -> tuple[HeaderMatch, ...]:
        """A map of name → StringMatch; an empty StringMatch means "present" (Istio)."""
        raw = self.r.obj(parent, key, path)
        out = []
        for name in sorted(raw):
            hpath = f"{path}.{key}.{name}"
            if lowercase and name != name.lower():
                raise self.r.fail(hpath, "header names must be lowercase")
            value = self._obj(raw[name], hpath) if raw[name] is not None else {}
            out.append(HeaderMatch(name, self._string_match(value, hpath) if value else None))
        return tuple(out)

    def destination(self, item: Mapping[str, Any], path: str) -> Destination:
        dest = self.r.obj(item, "destination", path, required=True)
        dpath = f"{path}.destination"
        self.r.only(dest, dpath, _DESTINATION)
        host = self.r.text(dest, "host", dpath, required=True)
        problem = hosts.check_host(host)
        if problem and not ipaddr.is_ip(host):
            raise self.r.fail(f"{dpath}.host", problem)
        port_sel = self.r.obj(dest, "port", dpath)
        self.r.only(port_sel, f"{dpath}.port", _PORT_SELECTOR)
        subset = self.r.text(dest, "subset", dpath)
        return Destination(
            resolve_host(host, self.namespace, self.domain),
            self.r.port(port_sel, "number", f"{dpath}.port"),
            subset,
        )

    def routes(
        self, parent: Mapping[str, Any], path: str, http: bool, required: bool = True
    ) -> tuple[RouteDestination, ...]:
        out = []
        items = self.r.items(parent, "route", path, required=required)
        for i, raw in enumerate(items):
            rpath = f"{path}.route[{i}]"
            item = self._obj(raw, rpath)
            self.r.only(item, rpath, _HTTP_DESTINATION if http else _L4_DESTINATION)
            weight = self.r.integer(item, "weight", rpath, 0, 100)
            headers = self.headers(item, rpath) if http else Headers()
            out.append(RouteDestination(self.destination(item, rpath), weight, headers))
        weights = [d.weight for d in out]
        if len(out) > 1 and any(w is not None for w in weights) and sum(w or 0 for w in weights) != 100:
            raise self.r.fail(
                f"{path}.route", f"weights must add up to 100, got {sum(w or 0 for w in weights)}"
            )
        return tuple(out)

    def gateways(self, parent: Mapping[str, Any], path: str) -> tuple[str, ...]:
        return tuple(resolve_gateway(g, self.namespace) for g in self.r.texts(parent, "gateways", path))

    def http_match(self, m: object, mpath: str) -> HTTPMatch:
        mobj = self._obj(m, mpath)
        self.r.only(mobj, mpath, _HTTP_MATCH, _HTTP_MATCH_UNSUPPORTED)
        return HTTPMatch(
            uri=self.string_match(mobj, "uri", mpath),
            authority=self.string_match(mobj, "authority", mpath),
            port=self.r.port(mobj, "port", mpath),
            gateways=self.gateways(mobj, mpath),
            scheme=self.string_match(mobj, "scheme", mpath),
            method=self.string_match(mobj, "method", mpath),
            headers=self._header_matches(mobj, "headers", mpath, True),
            without_headers=self._header_matches(mobj, "withoutHeaders", mpath, True),
            query_params=self._header_matches(mobj, "queryParams", mpath, False),
            ignore_uri_case=self.r.boolean(mobj, "ignoreUriCase", mpath),
            source_labels=MappingProxyType(self.r.labels(mobj, "sourceLabels", mpath)),
            source_namespace=self.r.text(mobj, "sourceNamespace", mpath),
            name=self.r.text(mobj, "name", mpath),
        )

    def http_route(self, raw: object, path: str) -> HTTPRoute:
        item = self._obj(raw, path)
        self.r.only(item, path, _HTTP, _HTTP_UNSUPPORTED)
        matches = tuple(
            self.http_match(m, f"{path}.match[{i}]") for i, m in enumerate(self.r.items(item, "match", path))
        )
        redirect = self.redirect(item, path)
        direct = self.direct_response(item, path)
        has_route = item.get("route") is not None
        if sum(x for x in (has_route, redirect is not None, direct is not None)) != 1:
            raise self.r.fail(path, "must have exactly one of route, redirect, directResponse")
        rewrite = self.rewrite(item, path)
        if rewrite is not None and not has_route:
            raise self.r.fail(
                f"{path}.rewrite", "needs route (it cannot be combined with redirect or directResponse)"
            )
        if item.get("mirror") is not None and item.get("mirrors") is not None:
            raise self.r.fail(path, "must have only one of mirror, mirrors")
        return HTTPRoute(
            matches,
            self.routes(item, path, True, required=False),
            self.r.text(item, "name", path),
            self.r.duration(item, "timeout", path),
            redirect,
            direct,
            rewrite,
            self.retries(item, path),
            self.fault(item, path),
            self.mirrors(item, path),
            self.headers(item, path),
            self.cors(item, path),
        )

    def redirect(self, item: Mapping[str, Any], path: str) -> Redirect | None:
        if item.get("redirect") is None:
            return None
        raw = self.r.obj(item, "redirect", path)
        rpath = f"{path}.redirect"
        self.r.only(raw, rpath, _REDIRECT, _REDIRECT_UNSUPPORTED)
        code = self.r.integer(raw, "redirectCode", rpath, 300, 399) or 301
        if code not in REDIRECT_CODES:
            raise self.r.fail(
                f"{rpath}.redirectCode", f"must be one of {', '.join(map(str, REDIRECT_CODES))}"
            )
        return Redirect(
            self.r.text(raw, "uri", rpath),
            self.r.text(raw, "authority", rpath),
            self.r.port(raw, "port", rpath),
            self.r.text(raw, "scheme", rpath),
            code,
        )

    def direct_response(self, item: Mapping[str, Any], path: str) -> DirectResponse | None:
        if item.get("directResponse") is None:
            return None
        raw = self.r.obj(item, "directResponse", path)
        dpath = f"{path}.directResponse"
        self.r.only(raw, dpath, ("status", "body"))
        status = self.r.integer(raw, "status", dpath, 200, 599)
        if status is None:
            raise self.r.fail(f"{dpath}.status", "is required")
        body = self.r.obj(raw, "body", dpath)
        self.r.only(body, f"{dpath}.body", ("string",), ("bytes",))
        return DirectResponse(status, self.r.text(body, "string", f"{dpath}.body"))

    def rewrite(self, item: Mapping[str, Any], path: str) -> Rewrite | None:
        if item.get("rewrite") is None:
            return None
        raw = self.r.obj(item, "rewrite", path)
        rpath = f"{path}.rewrite"
        self.r.only(raw, rpath, _REWRITE)
        if "uri" in raw and "uriRegexRewrite" in raw:
            raise self.r.fail(rpath, "must have only one of uri, uriRegexRewrite")
        regex = None
        if raw.get("uriRegexRewrite") is not None:
            rr = self.r.obj(raw, "uriRegexRewrite", rpath)
            rrpath = f"{rpath}.uriRegexRewrite"
            self.r.only(rr, rrpath, ("match", "rewrite"))
            pattern = self.r.text(rr, "match", rrpath, required=True)
            try:
                re.compile(pattern)
            except re.error as e:
                raise self.r.fail(f"{rrpath}.match", f"invalid regular expression: {e}") from None
            regex = (pattern, self.r.text(rr, "rewrite", rrpath))
        uri = self.r.text(raw, "uri", rpath) if raw.get("uri") is not None else None
        return Rewrite(uri, self.r.text(raw, "authority", rpath), regex)

    def retries(self, item: Mapping[str, Any], path: str) -> Retries | None:
        if item.get("retries") is None:
            return None
        raw = self.r.obj(item, "retries", path)
        rpath = f"{path}.retries"
        self.r.only(raw, rpath, _RETRIES, _RETRIES_UNSUPPORTED)
        retry_on = self.r.text(raw, "retryOn", rpath)
        for part in retry_on.split(","):
            if retry_on and not part.strip():
                raise self.r.fail(f"{rpath}.retryOn", f"has an empty entry: {retry_on!r:.80}")
        return Retries(
            self.r.integer(raw, "attempts", rpath, 0, 2147483647) or 0,
            self.r.duration(raw, "perTryTimeout", rpath, 0.001),
            retry_on,
        )

    def _percent(self, raw: Mapping[str, Any], path: str) -> float:
        if raw.get("percentage") is not None:
            pct = self.r.obj(raw, "percentage", path)
            self.r.only(pct, f"{path}.percentage", ("value",))
            value = self.r.number(pct, "value", f"{path}.percentage", 0.0, 100.0)
            return 100.0 if value is None else value
        legacy = self.r.integer(raw, "percent", path, 0, 100)
        return 100.0 if legacy is None else float(legacy)

    def fault(self, item: Mapping[str, Any], path: str) -> Fault | None:
        if item.get("fault") is None:
            return None
        raw = self.r.obj(item, "fault", path)
        fpath = f"{path}.fault"
        self.r.only(raw, fpath, _FAULT)
        if not raw.get("delay") and not raw.get("abort"):
            raise self.r.fail(fpath, "must have delay or abort")
        out = Fault()
        if raw.get("delay") is not None:
            d = self.r.obj(raw, "delay", fpath)
            dpath = f"{fpath}.delay"
            self.r.only(d, dpath, _DELAY, _DELAY_UNSUPPORTED)
            delay = self.r.duration(d, "fixedDelay", dpath, 0.001)
            if delay is None:
                raise self.r.fail(f"{dpath}.fixedDelay", "is required")
            out = Fault(delay, self._percent(d, dpath))
        if raw.get("abort") is not None:
            a = self.r.obj(raw, "abort", fpath)
            apath = f"{fpath}.abort"
            self.r.only(a, apath, _ABORT, _ABORT_UNSUPPORTED)
            status = self.r.integer(a, "httpStatus", apath, 200, 599)
            if status is None:
                raise self.r.fail(f"{apath}.httpStatus", "is required")
            out = Fault(out.delay_seconds, out.delay_percent, status, self._percent(a, apath))
        return out

    def mirrors(self, item: Mapping[str, Any], path: str) -> tuple[Mirror, ...]:
        if item.get("mirror") is not None:
            dest = self.destination({"destination": item["mirror"]}, path)
            pct = 100.0
            if item.get("mirrorPercentage") is not None:
                pct = self._percent({"percentage": item["mirrorPercentage"]}, path)
            return (Mirror(dest, pct),)
        if item.get("mirrorPercentage") is not None:
            raise self.r.fail(f"{path}.mirrorPercentage", "needs mirror")
        out = []
        for i, raw in enumerate(self.r.items(item, "mirrors", path)):
            mpath = f"{path}.mirrors[{i}]"
            m = self._obj(raw, mpath)
            self.r.only(m, mpath, _MIRROR)
            out.append(Mirror(self.destination(m, mpath), self._percent(m, mpath)))
        return tuple(out)

    def _ops(self, parent: Mapping[str, Any], key: str, path: str) -> HeaderOps:
        raw = self.r.obj(parent, key, path)
        opath = f"{path}.{key}"
        self.r.only(raw, opath, _HEADER_OPS)
        return HeaderOps(
            tuple(sorted(self.r.labels(raw, "set", opath).items())),
            tuple(sorted(self.r.labels(raw, "add", opath).items())),
            self.r.texts(raw, "remove", opath),
        )

    def headers(self, item: Mapping[str, Any], path: str) -> Headers:
        raw = self.r.obj(item, "headers", path)
        hpath = f"{path}.headers"
        self.r.only(raw, hpath, _HEADERS)
        return Headers(self._ops(raw, "request", hpath), self._ops(raw, "response", hpath))

    def cors(self, item: Mapping[str, Any], path: str) -> CorsPolicy | None:
        if item.get("corsPolicy") is None:
            return None
        raw = self.r.obj(item, "corsPolicy", path)
        cpath = f"{path}.corsPolicy"
        self.r.only(raw, cpath, _CORS, _CORS_UNSUPPORTED)
        origins = []
        for i, o in enumerate(self.r.items(raw, "allowOrigins", cpath)):
            opath = f"{cpath}.allowOrigins[{i}]"
            origins.append(self._string_match(self._obj(o, opath), opath))
        credentials = self.r.boolean(raw, "allowCredentials", cpath) if "allowCredentials" in raw else None
        return CorsPolicy(
            tuple(origins),
            self.r.texts(raw, "allowMethods", cpath),
            self.r.texts(raw, "allowHeaders", cpath),
            self.r.texts(raw, "exposeHeaders", cpath),
            self.r.duration(raw, "maxAge", cpath),
            credentials,
        )

    def l4_route(self, raw: object, path: str, tls: bool) -> L4Route:
        item = self._obj(raw, path)
        self.r.only(item, path, _L4_ROUTE)
        matches = []
        for i, m in enumerate(self.r.items(item, "match", path, required=tls)):
            mpath = f"{path}.match[{i}]"
            mobj = self._obj(m, mpath)
            self.r.only(mobj, mpath, _TLS_MATCH if tls else _TCP_MATCH, _L4_MATCH_UNSUPPORTED)
            sni: tuple[str, ...] = ()
            if tls:
                sni = self.r.texts(mobj, "sniHosts", mpath, required=True)
                for j, h in enumerate(sni):
                    problem = hosts.check_host(h)
                    if problem:
                        raise self.r.fail(f"{mpath}.sniHosts[{j}]", problem)
            matches.append(L4Match(sni, self.r.port(mobj, "port", mpath), self.gateways(mobj, mpath)))
        return L4Route(tuple(matches), self.routes(item, path, False))
