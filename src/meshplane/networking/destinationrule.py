"""Istio's DestinationRule (networking.istio.io): subsets and traffic policies of a host.

Parsed (istio/api networking/v1alpha3/destination_rule.proto): `host` (a short name is relative to
the rule's namespace, as Istio's `ResolveShortnameToFQDN`), `subsets` (name, labels, trafficPolicy),
`trafficPolicy` and its `portLevelSettings` with `loadBalancer` (`simple`, `consistentHash` by
header, cookie, source IP or query parameter over ring hash or maglev), `connectionPool` (tcp and
http limits and timeouts), `outlierDetection` (consecutive 5xx/gateway errors, interval, ejection
time and percent, minHealthPercent), `tls` (ISTIO_MUTUAL or DISABLE), `exportTo` of "." or "*", and
`loadBalancer.localityLbSetting` (enabled, distribute, failover, failoverPriority; validated as
Istio's validateLocalityLbSetting in pkg/config/validation/validation.go: distribute and failover
exclusive, failover with a topology label in failoverPriority refused, weights 1-100 adding to
100 per `from`, localities without empty parts and with at most one trailing `*`, not overlapping,
failover regions different, without '/' or '*'). Every other field (warmup, tunnel, SIMPLE/MUTUAL
TLS, workloadSelector, ...) is refused with its path, never ignored.

`DestinationRule.policy(port, subset)` merges the levels as Istio's MergeSubsetTrafficPolicy
(pilot/pkg/networking/core/cluster_traffic_policy.go): port-level settings replace the
destination-level loadBalancer/connectionPool/outlierDetection/tls entirely (no inheritance),
then a subset's own settings replace the field they set, a subset's port-level settings all four.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from meshplane.model import crfields as fields
from meshplane.model.ids import DEFAULT_DOMAIN
from meshplane.networking import hosts, objects
from meshplane.networking import virtualservice as vs_model

_EMPTY: Mapping[str, str] = MappingProxyType({})
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_MAX_U32 = 4294967295

_SPEC = ("host", "trafficPolicy", "subsets", "exportTo")
_SPEC_UNSUPPORTED = ("workloadSelector",)
_POLICY = ("loadBalancer", "connectionPool", "outlierDetection", "tls", "portLevelSettings")
_POLICY_UNSUPPORTED = ("tunnel", "proxyProtocol", "retryBudget")
_PORT_POLICY = ("port", "loadBalancer", "connectionPool", "outlierDetection", "tls")
_SUBSET = ("name", "labels", "trafficPolicy")
_LB = ("simple", "consistentHash", "localityLbSetting")
_LB_UNSUPPORTED = ("warmup", "warmupDurationSecs")
_LOCALITY_LB = ("enabled", "distribute", "failover", "failoverPriority")
# the topology labels Istio refuses in failoverPriority next to failover
_TOPOLOGY_LABELS = (
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
)
_HASH = (
    "httpHeaderName",
    "httpCookie",
    "useSourceIp",
    "httpQueryParameterName",
    "ringHash",
    "maglev",
    "minimumRingSize",  # deprecated form of ringHash.minimumRingSize
)
_COOKIE = ("name", "path", "ttl")
_COOKIE_UNSUPPORTED = ("attributes",)
_POOL = ("tcp", "http")
_TCP = ("maxConnections", "connectTimeout", "tcpKeepalive", "maxConnectionDuration")
_TCP_UNSUPPORTED = ("idleTimeout",)
_KEEPALIVE = ("probes", "time", "interval")
_HTTP = (
    "http1MaxPendingRequests",
    "http2MaxRequests",
    "maxRequestsPerConnection",
    "maxRetries",
    "idleTimeout",
    "maxConcurrentStreams",
    "h2UpgradePolicy",
)
_HTTP_UNSUPPORTED = ("useClientProtocol",)
_OUTLIER = (
    "consecutive5xxErrors",
    "consecutiveGatewayErrors",
    "interval",
    "baseEjectionTime",
    "maxEjectionPercent",
    "minHealthPercent",
)
_OUTLIER_UNSUPPORTED = (
    "consecutiveErrors",
    "splitExternalLocalOriginErrors",
    "consecutiveLocalOriginFailures",
)
_TLS = ("mode",)
_TLS_UNSUPPORTED = (
    "clientCertificate",
    "privateKey",
    "caCertificates",
    "credentialName",
    "subjectAltNames",
    "sni",
    "insecureSkipVerify",
    "caCrl",
)


class SimpleLB(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"
    LEAST_CONN = "LEAST_CONN"  # deprecated alias of LEAST_REQUEST
    RANDOM = "RANDOM"
    PASSTHROUGH = "PASSTHROUGH"


class TLSMode(StrEnum):
    DISABLE = "DISABLE"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"


class HashAlgorithm(StrEnum):
    RING_HASH = "ringHash"
    MAGLEV = "maglev"


@dataclass(frozen=True, slots=True)
class HashCookie:
    name: str
    path: str = ""
    ttl_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ConsistentHash:
    """Exactly one key: header, cookie, source IP or query parameter."""

    header: str = ""
    cookie: HashCookie | None = None
    source_ip: bool = False
    query_parameter: str = ""
    algorithm: HashAlgorithm = HashAlgorithm.RING_HASH
    size: int | None = None  # ringHash.minimumRingSize or maglev.tableSize


@dataclass(frozen=True, slots=True)
class Distribute:
    """Traffic from proxies in `source` goes to the localities of `to` with their weights."""

    source: str  # `region/zone/subzone`, trailing `*` allowed
    to: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class LocalityLbSetting:
    enabled: bool | None = None  # unset means enabled
    distribute: tuple[Distribute, ...] = ()
    failover: tuple[tuple[str, str], ...] = ()  # (from region, to region)
    failover_priority: tuple[str, ...] = ()  # label keys, or `key=value` overrides


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    simple: SimpleLB | None = None
    consistent_hash: ConsistentHash | None = None
    locality_lb: LocalityLbSetting | None = None


@dataclass(frozen=True, slots=True)
class TcpKeepalive:
    probes: int | None = None
    time_seconds: float | None = None
    interval_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ConnectionPool:
    max_connections: int | None = None
    connect_timeout_seconds: float | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration_seconds: float | None = None
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None
    idle_timeout_seconds: float | None = None
    max_concurrent_streams: int | None = None


@dataclass(frozen=True, slots=True)
class OutlierDetection:
    consecutive_5xx_errors: int | None = None
    consecutive_gateway_errors: int | None = None
    interval_seconds: float | None = None
    base_ejection_time_seconds: float | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """The four settings one cluster is built from (any may be unset: Istio's defaults apply)."""

    load_balancer: LoadBalancer | None = None
    connection_pool: ConnectionPool | None = None
    outlier_detection: OutlierDetection | None = None
    tls: TLSMode | None = None


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    base: Policy = Policy()
    ports: tuple[tuple[int, Policy], ...] = ()  # portLevelSettings, in order

    def at(self, port: int) -> tuple[Policy, bool]:
        """(the policy for `port`, whether a port-level setting replaced the base)."""
        for number, policy in self.ports:
            if number == port:
                return policy, True
        return self.base, False


@dataclass(frozen=True, slots=True)
class Subset:
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    traffic_policy: TrafficPolicy | None = None

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.labels.items())


@dataclass(frozen=True, slots=True)
class DestinationRule:
    name: str
    namespace: str
    host: str  # resolved FQDN, or a wildcard
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    export_to: tuple[str, ...] = ()  # "." or "*"; empty means "*"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def visible_to(self, namespace: str) -> bool:
        return not self.export_to or "*" in self.export_to or namespace == self.namespace

    def subset(self, name: str) -> Subset | None:
        return next((s for s in self.subsets if s.name == name), None)

    def policy(self, port: int, subset: str = "") -> Policy:
        """Istio's MergeSubsetTrafficPolicy for one port (and subset)."""
        base, _ = self.traffic_policy.at(port) if self.traffic_policy else (Policy(), False)
        s = self.subset(subset) if subset else None
        if s is None or s.traffic_policy is None:
            return base
        own, port_level = s.traffic_policy.at(port)
        if port_level:
            return own
        return Policy(
            own.load_balancer or base.load_balancer,
            own.connection_pool or base.connection_pool,
            own.outlier_detection or base.outlier_detection,
            own.tls or base.tls,
        )


def parse(
    obj: Mapping[str, Any], default_namespace: str = "default", domain: str = DEFAULT_DOMAIN
) -> DestinationRule:
    meta, spec = objects.meta(obj, "DestinationRule", default_namespace)
    r = fields.Reader(meta.ref)
    r.only(spec, "spec", _SPEC, _SPEC_UNSUPPORTED)
    host = r.text(spec, "host", "spec", required=True)
    problem = hosts.check_host(host)
    if problem:
        raise r.fail("spec.host", problem)
    export_to = r.texts(spec, "exportTo", "spec")
    for i, e in enumerate(export_to):
        if e not in (".", "*"):
            raise r.fail(f"spec.exportTo[{i}]", f"only '.' and '*' are supported, got {e!r:.60}")
    policy = _traffic_policy(r, spec, "spec") if spec.get("trafficPolicy") is not None else None
    subsets: list[Subset] = []
    for i, raw in enumerate(r.items(spec, "subsets", "spec")):
        path = f"spec.subsets[{i}]"
        if not isinstance(raw, Mapping):
            raise r.fail(path, f"must be an object, got {type(raw).__name__}")
        r.only(raw, path, _SUBSET)
        name = r.text(raw, "name", path, required=True)
        if not _LABEL.match(name):
            raise r.fail(
                f"{path}.name", f"must be a DNS label (lowercase alphanumerics and '-'), got {name!r:.60}"
            )
        if any(s.name == name for s in subsets):
            raise r.fail(f"{path}.name", f"duplicate subset name {name!r}")
        labels = r.labels(raw, "labels", path)
        sub_policy = _traffic_policy(r, raw, path) if raw.get("trafficPolicy") is not None else None
        subsets.append(Subset(name, MappingProxyType(labels), sub_policy))
    return DestinationRule(
        meta.name,
        meta.namespace,
        vs_model.resolve_host(host, meta.namespace, domain),
        policy,
        tuple(subsets),
        export_to,
    )


def _traffic_policy(r: fields.Reader, parent: Mapping[str, Any], path: str) -> TrafficPolicy:
    raw = r.obj(parent, "trafficPolicy", path)
    tpath = f"{path}.trafficPolicy"
    r.only(raw, tpath, _POLICY, _POLICY_UNSUPPORTED)
    ports: list[tuple[int, Policy]] = []
    for i, item in enumerate(r.items(raw, "portLevelSettings", tpath)):
        ppath = f"{tpath}.portLevelSettings[{i}]"
        if not isinstance(item, Mapping):
            raise r.fail(ppath, f"must be an object, got {type(item).__name__}")
        r.only(item, ppath, _PORT_POLICY)
        port_sel = r.obj(item, "port", ppath, required=True)
        r.only(port_sel, f"{ppath}.port", ("number",))
        number = r.port(port_sel, "number", f"{ppath}.port", required=True)
        if any(n == number for n, _ in ports):
            raise r.fail(f"{ppath}.port.number", f"port {number} has settings already")
        ports.append((number, _policy(r, item, ppath)))
    return TrafficPolicy(_policy(r, raw, tpath), tuple(ports))


def _policy(r: fields.Reader, raw: Mapping[str, Any], path: str) -> Policy:
    return Policy(
        _load_balancer(r, raw, path),
        _connection_pool(r, raw, path),
        _outlier(r, raw, path),
        _tls(r, raw, path),
    )


def _load_balancer(r: fields.Reader, parent: Mapping[str, Any], path: str) -> LoadBalancer | None:
    if parent.get("loadBalancer") is None:
        return None
    raw = r.obj(parent, "loadBalancer", path)
    lpath = f"{path}.loadBalancer"
    r.only(raw, lpath, _LB, _LB_UNSUPPORTED)
    if "simple" in raw and "consistentHash" in raw:
        raise r.fail(lpath, "must have only one of simple, consistentHash")
    simple = None
    if raw.get("simple") is not None:
        text = r.text(raw, "simple", lpath)
        try:
            simple = SimpleLB(text)
        except ValueError:
            raise r.fail(
                f"{lpath}.simple", f"unknown value {text!r:.40}; want one of {', '.join(SimpleLB)}"
            ) from None
    hashing = _consistent_hash(r, raw, lpath) if raw.get("consistentHash") is not None else None
    locality = _locality_lb(r, raw, lpath) if raw.get("localityLbSetting") is not None else None
    return LoadBalancer(simple, hashing, locality)


def _locality_lb(r: fields.Reader, parent: Mapping[str, Any], path: str) -> LocalityLbSetting:
    """Istio's validateLocalityLbSetting (pkg/config/validation/validation.go)."""
    raw = r.obj(parent, "localityLbSetting", path)
    lpath = f"{path}.localityLbSetting"
    r.only(raw, lpath, _LOCALITY_LB)
    enabled = r.boolean(raw, "enabled", lpath) if raw.get("enabled") is not None else None
    priority = tuple(r.texts(raw, "failoverPriority", lpath))
    if raw.get("distribute") and raw.get("failover"):
        raise r.fail(lpath, "can not simultaneously specify 'distribute' and 'failover'")
    distribute: list[Distribute] = []
    for i, item in enumerate(r.items(raw, "distribute", lpath)):
        dpath = f"{lpath}.distribute[{i}]"
        if not isinstance(item, Mapping):
            raise r.fail(dpath, f"must be an object, got {type(item).__name__}")
        r.only(item, dpath, ("from", "to"))
        source = r.text(item, "from", dpath, required=True)
        to = r.obj(item, "to", dpath, required=True)
        weights: list[tuple[str, int]] = []
        for loc in to:
            weight = r.integer(to, loc, f"{dpath}.to", 1, 100)
            if weight is None:
                raise r.fail(f"{dpath}.to.{loc}", "locality weight must be in range [1, 100]")
            weights.append((str(loc), weight))
        total = sum(w for _, w in weights)
        if total != 100:
            raise r.fail(f"{dpath}.to", f"total locality weight {total} != 100")
        _check_localities(r, [loc for loc, _ in weights], f"{dpath}.to")
        distribute.append(Distribute(source, tuple(weights)))
    _check_localities(r, [d.source for d in distribute], f"{lpath}.distribute")
    failover: list[tuple[str, str]] = []
    for i, item in enumerate(r.items(raw, "failover", lpath)):
        fpath = f"{lpath}.failover[{i}]"
        if not isinstance(item, Mapping):
            raise r.fail(fpath, f"must be an object, got {type(item).__name__}")
        r.only(item, fpath, ("from", "to"))
        src, dst = r.text(item, "from", fpath, required=True), r.text(item, "to", fpath, required=True)
        if src == dst:
            raise r.fail(fpath, "locality lb failover settings must specify different regions")
        if "/" in src or "/" in dst:
            raise r.fail(fpath, "locality lb failover only specify region")
        if "*" in src or "*" in dst:
            raise r.fail(fpath, "locality lb failover region should not contain '*' wildcard")
        failover.append((src, dst))
    if failover:
        for i, key in enumerate(priority):
            if key in _TOPOLOGY_LABELS:
                raise r.fail(
                    f"{lpath}.failoverPriority[{i}]",
                    f"can not simultaneously set 'failover' and topology label {key!r} in 'failoverPriority'",
                )
    return LocalityLbSetting(enabled, tuple(distribute), tuple(failover), priority)


def _check_localities(r: fields.Reader, localities: list[str], path: str) -> None:
    """Istio's validateLocalities: at most one `*`, at the end; no empty part; no overlap."""
    seen: list[tuple[str, ...]] = []
    for loc in localities:
        stars = loc.count("*")
        if stars and (stars > 1 or not loc.endswith("*")):
            raise r.fail(path, f"locality {loc} wildcard '*' number can not exceed 1 and must be in the end")
        parts = tuple(loc.split("/"))
        if len(parts) > 3 or any(not p for p in parts):
            raise r.fail(path, f"locality {loc} must not contain empty region/zone/subzone info")
        scope = parts[:-1] if parts[-1] == "*" else parts  # `r/*` covers what `r` covers
        for prev in seen:
            if scope[: len(prev)] == prev or prev[: len(scope)] == scope:
                raise r.fail(path, f"locality {loc} overlap with previous specified ones")
        seen.append(scope)


def _consistent_hash(r: fields.Reader, parent: Mapping[str, Any], path: str) -> ConsistentHash:
    raw = r.obj(parent, "consistentHash", path)
    hpath = f"{path}.consistentHash"
    r.only(raw, hpath, _HASH)
    keys = [k for k in ("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName") if k in raw]
    if len(keys) != 1:
        raise r.fail(
            hpath, "must have exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName"
        )
    cookie = None
    if raw.get("httpCookie") is not None:
        c = r.obj(raw, "httpCookie", hpath)
        cpath = f"{hpath}.httpCookie"
        r.only(c, cpath, _COOKIE, _COOKIE_UNSUPPORTED)
        cookie = HashCookie(
            r.text(c, "name", cpath, required=True), r.text(c, "path", cpath), r.duration(c, "ttl", cpath)
        )
    source_ip = r.boolean(raw, "useSourceIp", hpath)
    if "useSourceIp" in raw and not source_ip:
        raise r.fail(f"{hpath}.useSourceIp", "must be true when given")
    if "ringHash" in raw and "maglev" in raw:
        raise r.fail(hpath, "must have only one of ringHash, maglev")
    if "minimumRingSize" in raw and ("ringHash" in raw or "maglev" in raw):
        raise r.fail(f"{hpath}.minimumRingSize", "must not be combined with ringHash or maglev")
    algorithm, size = HashAlgorithm.RING_HASH, r.integer(raw, "minimumRingSize", hpath, 1, 8388608)
    if raw.get("maglev") is not None:
        m = r.obj(raw, "maglev", hpath)
        r.only(m, f"{hpath}.maglev", ("tableSize",))
        algorithm, size = HashAlgorithm.MAGLEV, r.integer(m, "tableSize", f"{hpath}.maglev", 1, 5000011)
    elif raw.get("ringHash") is not None:
        ring = r.obj(raw, "ringHash", hpath)
        r.only(ring, f"{hpath}.ringHash", ("minimumRingSize",))
        size = r.integer(ring, "minimumRingSize", f"{hpath}.ringHash", 1, 8388608)
    return ConsistentHash(
        header=r.text(raw, "httpHeaderName", hpath),
        cookie=cookie,
        source_ip=source_ip,
        query_parameter=r.text(raw, "httpQueryParameterName", hpath),
        algorithm=algorithm,
        size=size,
    )


def _connection_pool(r: fields.Reader, parent: Mapping[str, Any], path: str) -> ConnectionPool | None:
    if parent.get("connectionPool") is None:
        return None
    raw = r.obj(parent, "connectionPool", path)
    cpath = f"{path}.connectionPool"
    r.only(raw, cpath, _POOL)
    tcp = r.obj(raw, "tcp", cpath)
    tpath = f"{cpath}.tcp"
    r.only(tcp, tpath, _TCP, _TCP_UNSUPPORTED)
    http = r.obj(raw, "http", cpath)
    hpath = f"{cpath}.http"
    r.only(http, hpath, _HTTP, _HTTP_UNSUPPORTED)
    upgrade = r.text(http, "h2UpgradePolicy", hpath)
    if upgrade not in ("", "DEFAULT", "DO_NOT_UPGRADE"):
        raise r.fail(
            f"{hpath}.h2UpgradePolicy", f"{upgrade!r:.40} is not supported (DEFAULT, DO_NOT_UPGRADE are)"
        )
    keepalive = None
    if tcp.get("tcpKeepalive") is not None:
        k = r.obj(tcp, "tcpKeepalive", tpath)
        kpath = f"{tpath}.tcpKeepalive"
        r.only(k, kpath, _KEEPALIVE)
        keepalive = TcpKeepalive(
            r.integer(k, "probes", kpath, 0, _MAX_U32),
            r.duration(k, "time", kpath, 0.001),
            r.duration(k, "interval", kpath, 0.001),
        )
    return ConnectionPool(
        max_connections=r.integer(tcp, "maxConnections", tpath, 0, _MAX_U32),
        connect_timeout_seconds=r.duration(tcp, "connectTimeout", tpath, 0.001),
        tcp_keepalive=keepalive,
        max_connection_duration_seconds=r.duration(tcp, "maxConnectionDuration", tpath, 0.001),
        http1_max_pending_requests=r.integer(http, "http1MaxPendingRequests", hpath, 0, _MAX_U32),
        http2_max_requests=r.integer(http, "http2MaxRequests", hpath, 0, _MAX_U32),
        max_requests_per_connection=r.integer(http, "maxRequestsPerConnection", hpath, 0, _MAX_U32),
        max_retries=r.integer(http, "maxRetries", hpath, 0, _MAX_U32),
        idle_timeout_seconds=r.duration(http, "idleTimeout", hpath, 0.001),
        max_concurrent_streams=r.integer(http, "maxConcurrentStreams", hpath, 1, 2147483647),
    )


def _outlier(r: fields.Reader, parent: Mapping[str, Any], path: str) -> OutlierDetection | None:
    if parent.get("outlierDetection") is None:
        return None
    raw = r.obj(parent, "outlierDetection", path)
    opath = f"{path}.outlierDetection"
    r.only(raw, opath, _OUTLIER, _OUTLIER_UNSUPPORTED)
    return OutlierDetection(
        consecutive_5xx_errors=r.integer(raw, "consecutive5xxErrors", opath, 0, _MAX_U32),
        consecutive_gateway_errors=r.integer(raw, "consecutiveGatewayErrors", opath, 0, _MAX_U32),
        interval_seconds=r.duration(raw, "interval", opath, 0.001),
        base_ejection_time_seconds=r.duration(raw, "baseEjectionTime", opath, 0.001),
        max_ejection_percent=r.integer(raw, "maxEjectionPercent", opath, 0, 100),
        min_health_percent=r.integer(raw, "minHealthPercent", opath, 0, 100),
    )


def _tls(r: fields.Reader, parent: Mapping[str, Any], path: str) -> TLSMode | None:
    if parent.get("tls") is None:
        return None
    raw = r.obj(parent, "tls", path)
    tpath = f"{path}.tls"
    r.only(raw, tpath, _TLS, _TLS_UNSUPPORTED)
    text = r.text(raw, "mode", tpath) or "DISABLE"
    if text in ("SIMPLE", "MUTUAL"):
        raise r.fail(
            f"{tpath}.mode",
            f"{text} (TLS origination with files or credentialName) is not supported by meshplane",
        )
    try:
        return TLSMode(text)
    except ValueError:
        raise r.fail(
            f"{tpath}.mode", f"unknown mode {text!r:.40}; want one of DISABLE, ISTIO_MUTUAL"
        ) from None
