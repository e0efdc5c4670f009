"""Listeners (LDS) of a sidecar, for a lab without traffic capture.

Outbound: one explicit HTTP listener on the pod's localhost address, port 15001, whose routes come
from RDS (rds.outbound). Inbound: one listener per own target port, bound on the proxy's IP (what
peers reach through EDS), forwarding to the app at the pod's localhost address (`inbound|PORT||`).
Inbound security as Istio's (pilot/pkg/networking/core/filterchain_options.go): PERMISSIVE has a
TLS chain (transport `tls` and an Istio ALPN) and a plaintext chain; STRICT only the TLS chain.
"""

from __future__ import annotations

import logging

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2

from meshplane.model import mesh
from meshplane.xds import filters, inbound, mtls, naming, protos

log = logging.getLogger(__name__)


def outbound(localhost: str, port: int = naming.OUTBOUND_LISTENER_PORT) -> listener_pb2.Listener:
    return listener_pb2.Listener(
        name=naming.listener(localhost, port),
        address=protos.socket_address(localhost, port),
        traffic_direction=base_pb2.OUTBOUND,
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[
                    filters.hcm(
                        f"outbound_{localhost}_{port}",
                        rds_name=naming.outbound_route(port),
                        explicit_proxy=True,
                    )
                ]
            )
        ],
    )


def _inbound_filter(p: inbound.InboundPort) -> listener_components_pb2.Filter:
    cluster = naming.inbound_cluster(p.port)
    if not p.protocol.is_http:
        return filters.tcp_proxy(cluster, [(cluster, 1)])
    routes = route_pb2.RouteConfiguration(
        name=cluster,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name=f"inbound|http|{p.port}", domains=["*"], routes=[_inbound_route(cluster)]
            )
        ],
    )
    return filters.hcm(f"inbound_{p.address}_{p.port}", route_config=routes, inbound=True)


def _inbound_route(cluster: str) -> route_components_pb2.Route:
    return route_components_pb2.Route(
        name="default",
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=route_components_pb2.RouteAction(
            cluster=cluster,
            timeout=protos.duration(0),
            max_stream_duration=route_components_pb2.RouteAction.MaxStreamDuration(
                max_stream_duration=protos.duration(0), grpc_timeout_header_max=protos.duration(0)
            ),
        ),
    )


def inbound_listener(p: inbound.InboundPort, mode: mesh.MtlsMode, sds: bool) -> listener_pb2.Listener | None:
    """None when no chain can be served: STRICT mode on a proxy without the workload cert."""
    if mode is mesh.MtlsMode.STRICT and not sds:
        log.warning("STRICT mTLS but the proxy has no SDS: no inbound listener port=%d", p.port)
        return None
    chains = []
    if sds:
        chains.append(
            listener_components_pb2.FilterChain(
                name=f"{naming.inbound_cluster(p.port)}-mtls",
                filter_chain_match=listener_components_pb2.FilterChainMatch(
                    transport_protocol="tls",
                    application_protocols=mtls.ALPN_ISTIO_MTLS if mode is mesh.MtlsMode.PERMISSIVE else (),
                ),
                transport_socket=mtls.tls_socket(mtls.downstream_tls()),
                filters=[_inbound_filter(p)],
            )
        )
    if mode is mesh.MtlsMode.PERMISSIVE:
        chains.append(
            listener_components_pb2.FilterChain(
                name=f"{naming.inbound_cluster(p.port)}-plaintext",
                filter_chain_match=listener_components_pb2.FilterChainMatch(transport_protocol="raw_buffer")
                if sds
                else None,
                filters=[_inbound_filter(p)],
            )
        )
    return listener_pb2.Listener(
        name=naming.listener(p.address, p.port),
        address=protos.socket_address(p.address, p.port),
        traffic_direction=base_pb2.INBOUND,
        listener_filters=[filters.tls_inspector()] if sds else [],
        filter_chains=chains,
    )
