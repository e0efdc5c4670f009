"""Routes (RDS) of a sidecar's explicit outbound HTTP listener: one virtual host per HTTP service port.

Domains follow what Kubernetes DNS lets an app write (Istio's sidecar virtual hosts): `NAME:PORT`
(only for services of the proxy's own namespace), `NAME.NS:PORT`, `NAME.NS.svc:PORT`, the FQDN with
the port, and the service's ClusterIP in the proxy's cluster; port 80 also gets the port-less
forms. Envoy rejects a route configuration with a domain listed twice, so the first service that
claims a domain keeps it (services are taken in hostname order).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from google.protobuf import wrappers_pb2

from meshplane.model import service
from meshplane.model.ids import ClusterId, Hostname
from meshplane.xds import naming, protos

log = logging.getLogger(__name__)

# Istio's default retry policy (pilot/pkg/networking/core/route/retry DefaultPolicy)
RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


def domains(svc: service.Service, port: int, proxy_namespace: str, vips: Iterable[str]) -> list[str]:
    names = []
    if svc.namespace == proxy_namespace:
        names.append(svc.name)
    names += [f"{svc.name}.{svc.namespace}", f"{svc.name}.{svc.namespace}.svc", str(svc.hostname)]
    names += list(vips)
    out = [f"{n}:{port}" for n in names]
    if port == 80:
        out += names
    return out


def retry_policy() -> route_components_pb2.RetryPolicy:
    return route_components_pb2.RetryPolicy(
        retry_on=RETRY_ON,
        num_retries=wrappers_pb2.UInt32Value(value=2),
        retry_host_predicate=[
            route_components_pb2.RetryPolicy.RetryHostPredicate(
                name="envoy.retry_host_predicates.previous_hosts",
                typed_config=protos.to_any(previous_hosts_pb2.PreviousHostsPredicate()),
            )
        ],
        host_selection_retry_max_attempts=5,
        retriable_status_codes=[503],
    )


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


def outbound(
    services: Mapping[Hostname, service.Service], proxy_namespace: str, cluster_id: ClusterId, name: str
) -> route_pb2.RouteConfiguration:
    used: set[str] = set()
    vhosts = []
    for host in sorted(services):
        svc = services[host]
        if svc.external_name:
            continue
        vips = svc.cluster_vips.get(cluster_id, ())
        for port in svc.ports:
            if not port.protocol.is_http:
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
                    routes=[cluster_route(naming.outbound_cluster(host, port.port))],
                    include_request_attempt_count=True,
                )
            )
    return route_pb2.RouteConfiguration(
        name=name, virtual_hosts=vhosts, validate_clusters=wrappers_pb2.BoolValue(value=False)
    )
