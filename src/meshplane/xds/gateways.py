"""Router mode: the listeners, routes and extra clusters a gateway proxy's Gateway config asks for.

Servers of every Gateway whose selector picks the proxy are merged by port (the first server to
claim a port decides its kind). Supported, as Istio builds them (pilot/pkg/networking/core/gateway.go):
- TLS/HTTPS PASSTHROUGH: `tls_inspector` and one filter chain per VirtualService `tls` route, matched
  on `sniHosts` (`*` matches any SNI), `tcp_proxy` to the route's destination, bytes untouched;
- AUTO_PASSTHROUGH (east-west 15443): one chain per service port matched on SNI
  `outbound_.PORT_._.HOST`, to the SNI-DNAT cluster of that name (no TLS of its own);
- HTTP/HTTP2/GRPC: an HTTP connection manager with RDS `http.PORT` built from VirtualService `http`
  routes by httproute.py, the route builder sidecars use too (every HTTPRoute field);
- TCP: the first matching VirtualService `tcp` route.
Servers that terminate TLS (SIMPLE, MUTUAL, ISTIO_MUTUAL) are not generated and are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from google.protobuf import wrappers_pb2

from meshplane.model import proxy as proxy_model
from meshplane.model import service
from meshplane.model.ids import Hostname
from meshplane.networking import config as networking_config
from meshplane.networking import gateway as gw_model
from meshplane.networking import hosts
from meshplane.networking import virtualservice as vs_model
from meshplane.xds import cds, filters, httproute, naming, protos

log = logging.getLogger(__name__)

Services = Mapping[Hostname, service.Service]


@dataclass(slots=True)
class PortServers:
    """The servers (with their Gateway) merged on one port."""

    port: int
    protocol: gw_model.ServerProtocol
    kind: str  # "passthrough" | "auto_passthrough" | "http" | "tcp"
    servers: list[tuple[gw_model.Gateway, gw_model.Server]] = field(default_factory=list)


def _kind(server: gw_model.Server) -> str | None:
    if server.tls is not None and server.tls.https_redirect and server.port.protocol.is_http:
        return "http"
    if server.auto_passthrough:
        return "auto_passthrough"
    if server.passthrough:
        return "passthrough"
    if server.tls is not None and server.port.protocol in (
        gw_model.ServerProtocol.HTTPS,
        gw_model.ServerProtocol.TLS,
    ):
        return None  # TLS termination needs gateway credentials, which are not generated
    if server.port.protocol.is_http:
        return "http"
    if server.port.protocol in (gw_model.ServerProtocol.TCP, gw_model.ServerProtocol.MONGO):
        return "tcp"
    return None


def merged_servers(proxy: proxy_model.Proxy, cfg: networking_config.NetworkingConfig) -> list[PortServers]:
    by_port: dict[int, PortServers] = {}
    for gw in cfg.gateways_for(proxy.labels):
        for server in gw.servers:
            kind = _kind(server)
            if kind is None:
                log.warning(
                    "gateway server not supported (TLS termination) gateway=%s port=%d proxy=%s",
                    gw.key,
                    server.port.number,
                    proxy.id,
                )
                continue
            ps = by_port.setdefault(
                server.port.number, PortServers(server.port.number, server.port.protocol, kind)
            )
            if ps.kind != kind:
                log.warning(
                    "gateway server conflicts with an earlier server on its port, ignored gateway=%s port=%d "
                    "kind=%s earlier=%s proxy=%s",
                    gw.key,
                    server.port.number,
                    kind,
                    ps.kind,
                    proxy.id,
                )
                continue
            ps.servers.append((gw, server))
    return [by_port[p] for p in sorted(by_port)]


def _bound(vs: vs_model.VirtualService, gw: gw_model.Gateway, server: gw_model.Server) -> list[str]:
    """The VirtualService hosts this server serves ([] when the VS is not bound to it)."""
    if gw.key not in vs.gateways:
        return []
    out = []
    for text in server.hosts:
        gh = hosts.gateway_host(text)
        if not gh.admits(vs.namespace, gw.namespace):
            continue
        for h in vs.hosts:
            if hosts.matches(h, gh.dns):
                out.append(hosts.more_specific(h, gh.dns))
    return list(dict.fromkeys(out))


def _gateway_matches(match_gateways: Sequence[str], gw: gw_model.Gateway) -> bool:
    return not match_gateways or gw.key in match_gateways


def _weighted(
    routes: Sequence[vs_model.RouteDestination], services: Services, where: str
) -> list[tuple[str, int]]:
    return [(name, weight) for _, name, weight in httproute.weighted(routes, services, 0, where)]


def _passthrough_chains(
    ps: PortServers, cfg: networking_config.NetworkingConfig, services: Services
) -> list[listener_components_pb2.FilterChain]:
    chains = []
    seen: set[tuple[str, ...]] = set()
    for gw, server in ps.servers:
        for vs in cfg.virtual_services_for(gw.key):
            if not _bound(vs, gw, server):
                continue
            for i, route in enumerate(vs.tls):
                for match in route.matches:
                    if (match.port and match.port != ps.port) or not _gateway_matches(match.gateways, gw):
                        continue
                    sni = () if "*" in match.sni_hosts else tuple(sorted(set(match.sni_hosts)))
                    if sni in seen:
                        log.debug("duplicate SNI match ignored vs=%s tls[%d] port=%d", vs.key, i, ps.port)
                        continue
                    clusters = _weighted(route.routes, services, f"vs={vs.key} tls[{i}]")
                    if not clusters:
                        continue
                    seen.add(sni)
                    chains.append(
                        listener_components_pb2.FilterChain(
                            filter_chain_match=listener_components_pb2.FilterChainMatch(server_names=sni),
                            filters=[
                                filters.tcp_proxy(
                                    clusters[0][0] if len(clusters) == 1 else f"{vs.key}", clusters
                                )
                            ],
                        )
                    )
    return chains


def auto_passthrough_targets(
    ps: PortServers, services: Services
) -> list[tuple[service.Service, service.ServicePort]]:
    out: list[tuple[service.Service, service.ServicePort]] = []
    for host in sorted(services):
        svc = services[host]
        admitted = any(
            hosts.gateway_host(h).admits(svc.namespace, gw.namespace)
            and hosts.matches(hosts.gateway_host(h).dns, host)
            for gw, server in ps.servers
            for h in server.hosts
        )
        if admitted:
            out.extend((svc, p) for p in cds.cluster_ports(svc))
    return out


def _auto_passthrough_chains(
    ps: PortServers, services: Services
) -> list[listener_components_pb2.FilterChain]:
    chains = []
    for svc, port in auto_passthrough_targets(ps, services):
        name = naming.sni_name(svc.hostname, port.port)
        chains.append(
            listener_components_pb2.FilterChain(
                filter_chain_match=listener_components_pb2.FilterChainMatch(server_names=[name]),
                filters=[filters.tcp_proxy(name, [(name, 1)])],
            )
        )
    return chains


def _tcp_chains(
    ps: PortServers, cfg: networking_config.NetworkingConfig, services: Services
) -> list[listener_components_pb2.FilterChain]:
    for gw, server in ps.servers:
        for vs in cfg.virtual_services_for(gw.key):
            if not _bound(vs, gw, server):
                continue
            for i, route in enumerate(vs.tcp):
                ok = not route.matches or any(
                    (not m.port or m.port == ps.port) and _gateway_matches(m.gateways, gw)
                    for m in route.matches
                )
                clusters = _weighted(route.routes, services, f"vs={vs.key} tcp[{i}]") if ok else []
                if clusters:
                    stat = clusters[0][0] if len(clusters) == 1 else vs.key
                    return [listener_components_pb2.FilterChain(filters=[filters.tcp_proxy(stat, clusters)])]
    return []


def listeners(
    proxy: proxy_model.Proxy, cfg: networking_config.NetworkingConfig, services: Services
) -> list[listener_pb2.Listener]:
    out = []
    address = proxy.ip
    for ps in merged_servers(proxy, cfg):
        listener_filters = []
        if ps.kind == "passthrough":
            chains = _passthrough_chains(ps, cfg, services)
            listener_filters = [filters.tls_inspector()]
        elif ps.kind == "auto_passthrough":
            chains = _auto_passthrough_chains(ps, services)
            listener_filters = [filters.tls_inspector()]
        elif ps.kind == "http":
            chains = [
                listener_components_pb2.FilterChain(
                    filters=[
                        filters.hcm(
                            f"outbound_{address}_{ps.port}", rds_name=naming.gateway_http_route(ps.port)
                        )
                    ]
                )
            ]
        else:
            chains = _tcp_chains(ps, cfg, services)
        if not chains:
            log.info("gateway listener has no filter chains, omitted port=%d proxy=%s", ps.port, proxy.id)
            continue
        out.append(
            listener_pb2.Listener(
                name=naming.listener(address, ps.port),
                address=protos.socket_address(address, ps.port),
                # every other pod IP too (Istio binds the wildcards of each IP family)
                additional_addresses=[
                    listener_pb2.AdditionalAddress(address=protos.socket_address(ip, ps.port))
                    for ip in dict.fromkeys(proxy.ip_addresses[1:])
                    if ip != address
                ],
                traffic_direction=base_pb2.OUTBOUND,
                listener_filters=listener_filters,
                filter_chains=chains,
            )
        )
    return out


def sni_dnat_targets(
    proxy: proxy_model.Proxy, cfg: networking_config.NetworkingConfig, services: Services
) -> list[tuple[service.Service, service.ServicePort]]:
    seen: dict[str, tuple[service.Service, service.ServicePort]] = {}
    for ps in merged_servers(proxy, cfg):
        if ps.kind == "auto_passthrough":
            for svc, port in auto_passthrough_targets(ps, services):
                seen.setdefault(naming.sni_name(svc.hostname, port.port), (svc, port))
    return list(seen.values())


def route_config(
    proxy: proxy_model.Proxy, cfg: networking_config.NetworkingConfig, services: Services, port: int
) -> route_pb2.RouteConfiguration:
    """`http.PORT`: a virtual host per served host; the first VirtualService claiming a domain keeps it."""
    vhosts: dict[str, route_components_pb2.VirtualHost] = {}
    used: set[str] = set()
    for ps in merged_servers(proxy, cfg):
        if ps.port != port or ps.kind != "http":
            continue
        for gw, server in ps.servers:
            for vs in cfg.virtual_services_for(gw.key):
                scope = httproute.Scope(gw.key, port, proxy.labels, proxy.namespace, services, cfg)
                routes = httproute.http_routes(vs, scope)
                for h in _bound(vs, gw, server):
                    doms = [d for d in (["*"] if h == "*" else [h, f"{h}:{port}"]) if d not in used]
                    if not doms or not routes:
                        continue
                    used.update(doms)
                    vhosts[h] = route_components_pb2.VirtualHost(
                        name=naming.virtual_host(h, port), domains=doms, routes=routes
                    )
    return route_pb2.RouteConfiguration(
        name=naming.gateway_http_route(port),
        virtual_hosts=list(vhosts.values()),
        validate_clusters=wrappers_pb2.BoolValue(value=False),
    )


def http_route_names(proxy: proxy_model.Proxy, cfg: networking_config.NetworkingConfig) -> list[str]:
    return [naming.gateway_http_route(ps.port) for ps in merged_servers(proxy, cfg) if ps.kind == "http"]
