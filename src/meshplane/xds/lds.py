"""Listeners (LDS) of an explicit-proxy sidecar (INTERCEPTION_MODE NONE: nothing is captured, the
lab's loopback mode), and the inbound filter chains both layouts share.

Outbound: one explicit HTTP listener on the pod's localhost address, port 15001, whose routes come
from RDS (rds.outbound). Inbound: one listener per own target port, bound on the proxy's IP (what
peers reach through EDS), forwarding to the app at the pod's localhost address (`inbound|PORT||`).
Inbound security as Istio's (pilot/pkg/networking/core/filterchain_options.go): PERMISSIVE has a
TLS chain (transport `tls` and an Istio ALPN) and a plaintext chain; STRICT only the TLS chain;
DISABLE (a PeerAuthentication) only plaintext. The mode is the workload's per port
(policy/peerauthn.py). Every chain carries the workload's AuthorizationPolicies as RBAC filters
(xds/rbac.py): HTTP ones in the HCM, network ones before tcp_proxy.
"""

from __future__ import annotations

import logging

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from google.protobuf import wrappers_pb2

from meshplane.model import mesh, service
from meshplane.policy import config as policy_config
from meshplane.xds import filters, inbound, jwt, mtls, naming, protos, rbac

log = logging.getLogger(__name__)
NO_POLICY = policy_config.WorkloadPolicy()


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


def inbound_filters(
    p: inbound.InboundPort, http: bool, stat_address: str, authz: policy_config.WorkloadPolicy = NO_POLICY
) -> list[listener_components_pb2.Filter]:
    """To the app through `inbound|PORT||`: an HCM that adds XFCC for HTTP (with the workload's
    HTTP RBAC filters), else the network RBAC filters and tcp_proxy."""
    cluster = naming.inbound_cluster(p.port)
    if not http:
        return [*rbac.network_filters(authz.authorization), filters.tcp_proxy(cluster, [(cluster, 1)])]
    routes = route_pb2.RouteConfiguration(
        name=cluster,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name=f"inbound|http|{p.port}", domains=["*"], routes=[_inbound_route(cluster)]
            )
        ],
    )
    hcm = filters.hcm(
        f"inbound_{stat_address}_{p.port}",
        route_config=routes,
        inbound=True,
        http_filters=[
            *jwt.http_filters(authz.request_authentication),
            *rbac.http_filters(authz.authorization),
        ],
    )
    return [hcm]


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


def inbound_chains(
    p: inbound.InboundPort,
    mode: mesh.MtlsMode,
    sds: bool,
    *,
    names: tuple[str, str],
    stat_address: str,
    destination_port: int | None = None,
    authz: policy_config.WorkloadPolicy = NO_POLICY,
) -> list[listener_components_pb2.FilterChain]:
    """The chains of one own port (filterchain_options.go): an Istio mTLS chain when the proxy has
    its certificate, a plaintext chain under PERMISSIVE. `names` are the (mTLS, plaintext) chain
    names; `destination_port` matches the original destination (virtualInbound).

    A port without a declared protocol is sniffed on the plaintext chain (http_inspector: HTTP
    goes to an HCM, the rest to tcp_proxy). Inside mTLS it is served as TCP: the caller's HTTP
    passes through to the app unchanged, without XFCC (Istio tells the two apart by the ALPN
    its `istio.alpn` filter sets, which upstream Envoy does not have)."""
    http = p.protocol.is_http
    sniff = p.protocol is service.Protocol.UNSUPPORTED
    port_match = wrappers_pb2.UInt32Value(value=destination_port) if destination_port else None
    chains = []
    if mode is mesh.MtlsMode.DISABLE:
        # plaintext only, whatever the transport (TLS the app serves itself passes through)
        if sniff:
            chains.append(
                listener_components_pb2.FilterChain(
                    name=names[1],
                    filter_chain_match=listener_components_pb2.FilterChainMatch(
                        destination_port=port_match, application_protocols=filters.SNIFFED_HTTP
                    ),
                    filters=inbound_filters(p, True, stat_address, authz),
                )
            )
        chains.append(
            listener_components_pb2.FilterChain(
                name=names[1],
                filter_chain_match=listener_components_pb2.FilterChainMatch(destination_port=port_match)
                if port_match
                else None,
                filters=inbound_filters(p, http, stat_address, authz),
            )
        )
        return chains
    if sds:
        chains.append(
            listener_components_pb2.FilterChain(
                name=names[0],
                filter_chain_match=listener_components_pb2.FilterChainMatch(
                    destination_port=port_match,
                    transport_protocol="tls",
                    application_protocols=mtls.ALPN_ISTIO_MTLS if mode is mesh.MtlsMode.PERMISSIVE else (),
                ),
                transport_socket=mtls.tls_socket(mtls.downstream_tls()),
                filters=inbound_filters(p, http, stat_address, authz),
            )
        )
    if mode is mesh.MtlsMode.PERMISSIVE:
        plain = "raw_buffer" if sds or sniff else ""
        if sniff:
            chains.append(
                listener_components_pb2.FilterChain(
                    name=names[1],
                    filter_chain_match=listener_components_pb2.FilterChainMatch(
                        destination_port=port_match,
                        transport_protocol=plain,
                        application_protocols=filters.SNIFFED_HTTP,
                    ),
                    filters=inbound_filters(p, True, stat_address, authz),
                )
            )
        chains.append(
            listener_components_pb2.FilterChain(
                name=names[1],
                filter_chain_match=listener_components_pb2.FilterChainMatch(
                    destination_port=port_match, transport_protocol=plain
                )
                if port_match or plain
                else None,
                filters=inbound_filters(p, http, stat_address, authz),
            )
        )
    return chains


def inbound_listener(
    p: inbound.InboundPort, mode: mesh.MtlsMode, sds: bool, authz: policy_config.WorkloadPolicy = NO_POLICY
) -> listener_pb2.Listener | None:
    """One own port on the proxy IP (explicit mode). None when no chain can be served: STRICT
    mode on a proxy without the workload cert."""
    if mode is mesh.MtlsMode.STRICT and not sds:
        log.warning("STRICT mTLS but the proxy has no SDS: no inbound listener port=%d", p.port)
        return None
    cluster = naming.inbound_cluster(p.port)
    chains = inbound_chains(
        p, mode, sds, names=(f"{cluster}-mtls", f"{cluster}-plaintext"), stat_address=p.address, authz=authz
    )
    sniff = p.protocol is service.Protocol.UNSUPPORTED and mode is not mesh.MtlsMode.STRICT
    return listener_pb2.Listener(
        name=naming.listener(p.address, p.port),
        address=protos.socket_address(p.address, p.port),
        traffic_direction=base_pb2.INBOUND,
        listener_filters=[
            *([filters.tls_inspector()] if sds and mode is not mesh.MtlsMode.DISABLE else []),
            *([filters.http_inspector()] if sniff else []),
        ],
        filter_chains=chains,
    )
