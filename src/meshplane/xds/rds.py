"""Routes (RDS) of a sidecar's explicit outbound HTTP listener: one virtual host per HTTP service port.

Domains follow what Kubernetes DNS lets an app write (Istio's sidecar virtual hosts): `NAME:PORT`
(only for services of the proxy's own namespace), `NAME.NS:PORT`, `NAME.NS.svc:PORT`, the FQDN with
the port, and the service's ClusterIP in the proxy's cluster; port 80 also gets the port-less
forms. Envoy rejects a route configuration with a domain listed twice, so the first service that
claims a domain keeps it (services are taken in hostname order).

A service port's routes come from the VirtualService bound to `mesh` for its host
(httproute.py, the route builder gateways share); without one, one default route to
`outbound|PORT||HOST` with Istio's default retries and a consistent-hash DestinationRule's hash policy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from envoy.config.route.v3 import route_components_pb2, route_pb2
from google.protobuf import wrappers_pb2

from meshplane.model import mesh, service
from meshplane.model.ids import ClusterId, Hostname
from meshplane.networking import config as networking_config
from meshplane.networking import virtualservice as vs_model
from meshplane.xds import httproute, naming, protos, trafficpolicy

log = logging.getLogger(__name__)

ALLOW_ANY = "allow_any"
BLOCK_ALL = "block_all"
RETRY_ON = httproute.RETRY_ON
retry_policy = httproute.default_retry_policy


def domains(svc: service.Service, port: int, proxy_namespace: str, vips: Iterable[str]) -> list[str]:
    names = []
    if svc.registry is service.Registry.EXTERNAL:
        # a ServiceEntry host has no short Kubernetes forms (httproute.go generateVirtualHostDomains)
        names.append(str(svc.hostname))
    else:
        if svc.namespace == proxy_namespace:
            names.append(svc.name)
        names += [f"{svc.name}.{svc.namespace}", f"{svc.name}.{svc.namespace}.svc", str(svc.hostname)]
    names += list(vips)
    out = [f"{n}:{port}" for n in names]
    if port == 80:
        out += names
    return out


def cluster_route(cluster: str, timeout_s: float = 0.0) -> route_components_pb2.Route:
    """Everything to one cluster; a 0 timeout disables Envoy's 15 s default, as Istio does."""
    return route_components_pb2.Route(
        name="default",
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=route_components_pb2.RouteAction(
            cluster=cluster,
            timeout=protos.duration(timeout_s),
            retry_policy=retry_policy(),
            max_stream_duration=route_components_pb2.RouteAction.MaxStreamDuration(
                max_stream_duration=protos.duration(0), grpc_timeout_header_max=protos.duration(0)
            ),
        ),
    )


def _default_route(
    host: Hostname, port: int, proxy_namespace: str, cfg: networking_config.NetworkingConfig
) -> route_components_pb2.Route:
    """A service port's route without a VirtualService: to `outbound|PORT||HOST`, with the hash
    policy of a consistent-hash DestinationRule (route.go consistentHashToHashPolicy)."""
    route = cluster_route(naming.outbound_cluster(host, port))
    rule = cfg.destination_rule(host, proxy_namespace)
    if rule is not None:
        route.route.hash_policy.extend(trafficpolicy.hash_policy(rule.policy(port).load_balancer))
    return route


def _routes(
    host: Hostname,
    port: int,
    proxy_namespace: str,
    labels: Mapping[str, str],
    cfg: networking_config.NetworkingConfig,
    services: Mapping[Hostname, service.Service],
) -> list[route_components_pb2.Route]:
    """The routes of a service port: its VirtualService's (bound to `mesh`) when it has one that
    yields routes for this proxy and port, else the default route."""
    scope = httproute.Scope(vs_model.MESH_GATEWAY, port, labels, proxy_namespace, services, cfg)
    vs = httproute.sidecar_virtual_service(host, scope) if cfg.virtual_services else None
    routes = httproute.http_routes(vs, scope) if vs is not None else []
    return routes or [_default_route(host, port, proxy_namespace, cfg)]


def _virtual_hosts(
    services: Mapping[Hostname, service.Service],
    proxy_namespace: str,
    cluster_id: ClusterId,
    wanted_port: int | None,
    cfg: networking_config.NetworkingConfig,
    labels: Mapping[str, str],
) -> list[route_components_pb2.VirtualHost]:
    """Virtual hosts of the HTTP ports (and, for one port's table, the sniffed ones) of every
    service; `wanted_port` None means every port (the explicit proxy's single table)."""
    used: set[str] = set()
    vhosts = []
    for host in sorted(services):
        svc = services[host]
        if svc.external_name:
            continue
        vips = svc.cluster_vips.get(cluster_id, ())
        for port in svc.ports:
            if wanted_port is None:
                if not port.protocol.is_http:
                    continue
            elif port.port != wanted_port or not (
                port.protocol.is_http or port.protocol is service.Protocol.UNSUPPORTED
            ):
                continue
            wanted = domains(svc, port.port, proxy_namespace, vips)
            mine = [d for d in wanted if d not in used]
            if len(mine) < len(wanted):
                log.debug("domains taken by an earlier service host=%s port=%d", host, port.port)
            if not mine:
                continue
            used.update(mine)
            vhosts.append(
                route_components_pb2.VirtualHost(
                    name=naming.virtual_host(host, port.port),
                    domains=mine,
                    routes=_routes(host, port.port, proxy_namespace, labels, cfg, services),
                    include_request_attempt_count=True,
                )
            )
    return vhosts


def outbound(
    services: Mapping[Hostname, service.Service],
    proxy_namespace: str,
    cluster_id: ClusterId,
    name: str,
    cfg: networking_config.NetworkingConfig | None = None,
    labels: Mapping[str, str] | None = None,
) -> route_pb2.RouteConfiguration:
    """The explicit proxy's one table (INTERCEPTION_MODE NONE): every HTTP service port."""
    return route_pb2.RouteConfiguration(
        name=name,
        virtual_hosts=_virtual_hosts(
            services,
            proxy_namespace,
            cluster_id,
            None,
            cfg or networking_config.NetworkingConfig(),
            labels or {},
        ),
        validate_clusters=wrappers_pb2.BoolValue(value=False),
    )


def _fallback(policy: mesh.OutboundTrafficPolicy) -> route_components_pb2.VirtualHost:
    """The last virtual host of a port's table (httproute.go `BuildCatchAllVirtualHost`): requests
    for hosts the mesh does not know go to PassthroughCluster (`allow_any`), or get a 502
    (`block_all`) under REGISTRY_ONLY."""
    if policy is mesh.OutboundTrafficPolicy.REGISTRY_ONLY:
        return route_components_pb2.VirtualHost(
            name=BLOCK_ALL,
            domains=["*"],
            routes=[
                route_components_pb2.Route(
                    name=BLOCK_ALL,
                    match=route_components_pb2.RouteMatch(prefix="/"),
                    direct_response=route_components_pb2.DirectResponseAction(status=502),
                )
            ],
            include_request_attempt_count=True,
        )
    route = cluster_route(naming.PASSTHROUGH_CLUSTER)
    route.name = ALLOW_ANY
    route.route.ClearField("retry_policy")
    return route_components_pb2.VirtualHost(
        name=ALLOW_ANY, domains=["*"], routes=[route], include_request_attempt_count=True
    )


def port_table(
    services: Mapping[Hostname, service.Service],
    port: int,
    proxy_namespace: str,
    cluster_id: ClusterId,
    policy: mesh.OutboundTrafficPolicy,
    cfg: networking_config.NetworkingConfig | None = None,
    labels: Mapping[str, str] | None = None,
) -> route_pb2.RouteConfiguration:
    """Route configuration `PORT` of a captured sidecar's `0.0.0.0_PORT` listener: a virtual host
    per HTTP (or sniffed) service on that port, then `allow_any` or `block_all`."""
    vhosts = _virtual_hosts(
        services, proxy_namespace, cluster_id, port, cfg or networking_config.NetworkingConfig(), labels or {}
    )
    return route_pb2.RouteConfiguration(
        name=str(port),
        virtual_hosts=[*vhosts, _fallback(policy)],
        validate_clusters=wrappers_pb2.BoolValue(value=False),
    )
