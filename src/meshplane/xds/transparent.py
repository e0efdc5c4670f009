"""Listeners (LDS) of a captured sidecar (INTERCEPTION_MODE REDIRECT): Istio's transparent layout.

`istio-iptables` sends the app's outbound TCP to 15001 and every inbound connection to 15006;
Envoy recovers the original destination (SO_ORIGINAL_DST). Names and shapes follow
pilot/pkg/networking/core/listener.go and listener_builder.go:

- `virtualOutbound` 0.0.0.0:15001, `use_original_dst`: hands a connection to the listener bound
  (`bind_to_port: false`) to its original destination, exact address first, then 0.0.0.0:PORT.
  Left-overs: `virtualOutbound-blackhole` (destination port 15001 itself, a loop) and
  `virtualOutbound-catchall-tcp` → PassthroughCluster, or BlackHoleCluster under REGISTRY_ONLY.
- `0.0.0.0_PORT` per port of an HTTP (or undeclared, sniffed) service: http_inspector; HTTP goes
  to an HCM with RDS route configuration `PORT` (rds.port_table), anything else to the
  `PassthroughFilterChain` default chain.
- `VIP_PORT` per TCP (or sniffed) service with a ClusterIP in the proxy's cluster: tcp_proxy to
  `outbound|PORT||HOST`; a sniffed one sends HTTP to the HCM of route table `PORT` first.
- `virtualInbound` 0.0.0.0:15006 (original_dst, tls_inspector, and http_inspector only for the
  sniffed ports under PERMISSIVE, where plaintext HTTP is told from TCP): a pair of chains
  named `0.0.0.0_PORT` per own port matched on the destination port (lds.inbound_chains: mTLS,
  plaintext under PERMISSIVE), `virtualInbound-blackhole` for 15006 itself, and catch-all chains
  for ports no service declares → InboundPassthroughCluster (the app, from 127.0.0.6). Under
  STRICT only Istio mTLS is accepted on any port, under DISABLE only plaintext. The mode is the
  workload's effective PeerAuthentication (policy/peerauthn.py), per own port when it has a
  `portLevelMtls` exception.

Not built (as in the explicit layout): headless and ExternalName services get no VIP listener
(their traffic is passed through), UDP, and ports 15001/15006 themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from google.protobuf import wrappers_pb2

from meshplane.model import mesh, service
from meshplane.model.ids import ClusterId, Hostname
from meshplane.policy import config as policy_config
from meshplane.policy import peerauthn
from meshplane.xds import filters, inbound, lds, mtls, naming, protos, rbac

log = logging.getLogger(__name__)

ANY = "0.0.0.0"
OUTBOUND_PORT = naming.OUTBOUND_LISTENER_PORT
INBOUND_PORT = naming.VIRTUAL_INBOUND_PORT
RESERVED = frozenset({OUTBOUND_PORT, INBOUND_PORT})
# Istio continues with the default chain when sniffing times out (protocolDetectionTimeout); a
# server-first protocol on a port it has to sniff waits this long before being passed on.
SNIFF_TIMEOUT_S = 5.0


def _fallback_cluster(policy: mesh.OutboundTrafficPolicy) -> str:
    if policy is mesh.OutboundTrafficPolicy.REGISTRY_ONLY:
        return naming.BLACKHOLE_CLUSTER
    return naming.PASSTHROUGH_CLUSTER


def _tcp(cluster: str) -> listener_components_pb2.Filter:
    return filters.tcp_proxy(cluster, [(cluster, 1)])


def _port(value: int) -> wrappers_pb2.UInt32Value:
    return wrappers_pb2.UInt32Value(value=value)


def virtual_outbound(policy: mesh.OutboundTrafficPolicy) -> listener_pb2.Listener:
    return listener_pb2.Listener(
        name=naming.VIRTUAL_OUTBOUND,
        address=protos.socket_address(ANY, OUTBOUND_PORT),
        use_original_dst=wrappers_pb2.BoolValue(value=True),
        traffic_direction=base_pb2.OUTBOUND,
        filter_chains=[
            listener_components_pb2.FilterChain(
                name=f"{naming.VIRTUAL_OUTBOUND}-blackhole",
                filter_chain_match=listener_components_pb2.FilterChainMatch(
                    destination_port=_port(OUTBOUND_PORT)
                ),
                filters=[_tcp(naming.BLACKHOLE_CLUSTER)],
            ),
            listener_components_pb2.FilterChain(
                name=f"{naming.VIRTUAL_OUTBOUND}-catchall-tcp", filters=[_tcp(_fallback_cluster(policy))]
            ),
        ],
    )


def _http_chain(port: int) -> listener_components_pb2.FilterChain:
    return listener_components_pb2.FilterChain(
        filter_chain_match=listener_components_pb2.FilterChainMatch(
            transport_protocol="raw_buffer", application_protocols=filters.SNIFFED_HTTP
        ),
        filters=[filters.hcm(f"outbound_{ANY}_{port}", rds_name=str(port))],
    )


def _sniffing(listener: listener_pb2.Listener) -> listener_pb2.Listener:
    listener.listener_filters.extend([filters.tls_inspector(), filters.http_inspector()])
    listener.listener_filters_timeout.CopyFrom(protos.duration(SNIFF_TIMEOUT_S))
    listener.continue_on_listener_filters_timeout = True
    return listener


def http_port(port: int, policy: mesh.OutboundTrafficPolicy) -> listener_pb2.Listener:
    """`0.0.0.0_PORT`: HTTP by the route table `PORT`, any other traffic by the fallback."""
    return _sniffing(
        listener_pb2.Listener(
            name=naming.listener(ANY, port),
            address=protos.socket_address(ANY, port),
            bind_to_port=wrappers_pb2.BoolValue(value=False),
            traffic_direction=base_pb2.OUTBOUND,
            filter_chains=[_http_chain(port)],
            default_filter_chain=listener_components_pb2.FilterChain(
                name="PassthroughFilterChain", filters=[_tcp(_fallback_cluster(policy))]
            ),
        )
    )


def vip_port(
    vip: str, host: Hostname, port: service.ServicePort, routed: Sequence[tuple[str, int]] = ()
) -> listener_pb2.Listener:
    """`VIP_PORT`: one service's TCP port, to `routed` (a VirtualService's tcp route,
    tcproute.py) or the service's cluster; a sniffed port sends HTTP through route table `PORT`."""
    cluster = naming.outbound_cluster(host, port.port)
    clusters = list(routed) or [(cluster, 1)]
    listener = listener_pb2.Listener(
        name=naming.listener(vip, port.port),
        address=protos.socket_address(vip, port.port),
        bind_to_port=wrappers_pb2.BoolValue(value=False),
        traffic_direction=base_pb2.OUTBOUND,
    )
    if port.protocol is service.Protocol.UNSUPPORTED:
        listener.filter_chains.append(_http_chain(port.port))
        listener.default_filter_chain.CopyFrom(
            listener_components_pb2.FilterChain(name=cluster, filters=[filters.tcp_proxy(cluster, clusters)])
        )
        return _sniffing(listener)
    listener.filter_chains.append(
        listener_components_pb2.FilterChain(name=cluster, filters=[filters.tcp_proxy(cluster, clusters)])
    )
    return listener


def outbound_ports(
    services: Mapping[Hostname, service.Service], cluster_id: ClusterId
) -> tuple[tuple[int, ...], tuple[tuple[str, Hostname, service.ServicePort], ...]]:
    """(ports that get `0.0.0.0_PORT`, (vip, host, port) that get `VIP_PORT`), sorted."""
    http: set[int] = set()
    vips: dict[tuple[str, int], tuple[str, Hostname, service.ServicePort]] = {}
    for host in sorted(services):
        svc = services[host]
        if svc.external_name:
            continue
        for sp in svc.ports:
            if sp.protocol is service.Protocol.UDP:
                continue
            if sp.port in RESERVED:
                log.debug("no outbound listener on a capture port host=%s port=%d", host, sp.port)
                continue
            if sp.protocol.is_http or sp.protocol is service.Protocol.UNSUPPORTED:
                http.add(sp.port)
            if sp.protocol.is_http:
                continue
            for vip in svc.cluster_vips.get(cluster_id, ()):
                vips.setdefault((vip, sp.port), (vip, host, sp))
    return tuple(sorted(http)), tuple(vips[k] for k in sorted(vips))


def _catch_all(
    mode: mesh.MtlsMode, sds: bool, authz: policy_config.WorkloadPolicy
) -> Iterable[listener_components_pb2.FilterChain]:
    """Chains for ports no service declares: to the app's original destination (TCP RBAC first)."""
    to_app = [*rbac.network_filters(authz.authorization), _tcp(naming.INBOUND_PASSTHROUGH_CLUSTER)]
    if mode is mesh.MtlsMode.DISABLE:
        yield listener_components_pb2.FilterChain(name=naming.VIRTUAL_INBOUND, filters=to_app)
        return
    if sds:
        yield listener_components_pb2.FilterChain(
            name=naming.VIRTUAL_INBOUND,
            filter_chain_match=listener_components_pb2.FilterChainMatch(
                transport_protocol="tls", application_protocols=mtls.ALPN_ISTIO_MTLS
            ),
            transport_socket=mtls.tls_socket(mtls.downstream_tls()),
            filters=to_app,
        )
    if mode is mesh.MtlsMode.PERMISSIVE:
        for transport in ("raw_buffer", "tls"):  # plaintext; TLS the app serves itself
            yield listener_components_pb2.FilterChain(
                name=naming.VIRTUAL_INBOUND,
                filter_chain_match=listener_components_pb2.FilterChainMatch(transport_protocol=transport),
                filters=to_app,
            )


def virtual_inbound(
    ports: Iterable[inbound.InboundPort],
    mtls: mesh.MtlsMode | peerauthn.Effective,
    sds: bool,
    authz: policy_config.WorkloadPolicy = lds.NO_POLICY,
) -> listener_pb2.Listener:
    """`mtls`: the workload's effective PeerAuthentication (a port-level mode applies to that own
    port's chains; the workload mode to the others and the catch-all)."""
    eff = mtls if isinstance(mtls, peerauthn.Effective) else peerauthn.Effective(mtls)
    mode = eff.mode
    chains = [
        listener_components_pb2.FilterChain(
            name=f"{naming.VIRTUAL_INBOUND}-blackhole",
            filter_chain_match=listener_components_pb2.FilterChainMatch(destination_port=_port(INBOUND_PORT)),
            filters=[_tcp(naming.BLACKHOLE_CLUSTER)],
        )
    ]
    if mode is mesh.MtlsMode.STRICT and not sds:
        log.warning("STRICT mTLS but the proxy has no SDS: virtualInbound accepts nothing")
    if any(m is mesh.MtlsMode.STRICT for _, m in eff.ports) and not sds:
        log.warning("STRICT mTLS on a port but the proxy has no SDS: that port accepts nothing")
    # http_inspector runs for the sniffed ports that accept plaintext (not STRICT)
    sniffed = [
        p.port
        for p in ports
        if p.protocol is service.Protocol.UNSUPPORTED and eff.for_port(p.port) is not mesh.MtlsMode.STRICT
    ]
    for p in ports:
        name = naming.listener(ANY, p.port)
        chains += lds.inbound_chains(
            p,
            eff.for_port(p.port),
            sds,
            names=(name, name),
            stat_address=ANY,
            destination_port=p.port,
            authz=authz,
        )
    chains += _catch_all(mode, sds, authz)
    return listener_pb2.Listener(
        name=naming.VIRTUAL_INBOUND,
        address=protos.socket_address(ANY, INBOUND_PORT),
        traffic_direction=base_pb2.INBOUND,
        listener_filters=[
            filters.original_dst(),
            filters.tls_inspector(),
            *([filters.http_inspector(sniffed)] if sniffed else []),
        ],
        listener_filters_timeout=protos.duration(SNIFF_TIMEOUT_S),
        continue_on_listener_filters_timeout=True,
        filter_chains=chains,
    )
