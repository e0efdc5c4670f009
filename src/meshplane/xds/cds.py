"""Clusters (CDS): Istio's outbound EDS clusters, a sidecar's inbound clusters, SNI-DNAT clusters.

Shapes follow pilot/pkg/networking/core/cluster_builder.go: `outbound|PORT||HOST` is an EDS cluster
over ADS with round robin, panic threshold 0 and Istio's open circuit breakers; auto mTLS picks the
transport socket per endpoint: endpoints whose metadata says `tlsMode: istio` get ISTIO_MUTUAL
(SNI `outbound_.PORT_._.HOST`, the service's SPIFFE ids as SANs), all others plaintext.
A DestinationRule adds `outbound|PORT|SUBSET|HOST` per subset and its traffic policy
(trafficpolicy.py) to both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import wrappers_pb2

from meshplane.model import mesh, service
from meshplane.networking import destinationrule as dr
from meshplane.xds import eds, mtls, naming, protos, snapshot, trafficpolicy

CONNECT_TIMEOUT_S = 10.0  # MeshConfig.connectTimeout default
HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_MAX = 4294967295


def identities(svc: service.Service, shards: snapshot.Shards | None, trust_domain: str) -> tuple[str, ...]:
    """SPIFFE ids a client accepts from the service's servers: its service accounts (entries that
    are already `spiffe://` URIs are kept, plain names are in the service's namespace) and those
    of every endpoint in every cluster."""
    out: set[str] = set()
    for sa in svc.service_accounts:
        out.add(sa if sa.startswith("spiffe://") else mtls.spiffe_id(trust_domain, svc.namespace, sa))
    for eps in (shards or {}).values():
        for ep in eps:
            if ep.service_account:
                out.add(mtls.spiffe_id(trust_domain, ep.namespace or svc.namespace, ep.service_account))
    return tuple(sorted(out))


def _circuit_breakers() -> circuit_breaker_pb2.CircuitBreakers:
    big = wrappers_pb2.UInt32Value(value=_MAX)
    return circuit_breaker_pb2.CircuitBreakers(
        thresholds=[
            circuit_breaker_pb2.CircuitBreakers.Thresholds(
                max_connections=big,
                max_pending_requests=big,
                max_requests=big,
                max_retries=big,
                track_remaining=True,
            )
        ]
    )


def _http2_options() -> dict[str, object]:
    opts = http_protocol_options_pb2.HttpProtocolOptions(
        explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig(
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions()
        )
    )
    return {HTTP_OPTIONS_KEY: protos.to_any(opts)}


def _base(name: str) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=name,
        connect_timeout=protos.duration(CONNECT_TIMEOUT_S),
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
        circuit_breakers=_circuit_breakers(),
    )


def _eds(c: cluster_pb2.Cluster) -> None:
    c.type = cluster_pb2.Cluster.EDS
    c.eds_cluster_config.CopyFrom(
        cluster_pb2.Cluster.EdsClusterConfig(eds_config=protos.ads_source(), service_name=c.name)
    )
    # Istio: no panic mode, so unhealthy endpoints are never used.
    c.common_lb_config.CopyFrom(
        cluster_pb2.Cluster.CommonLbConfig(healthy_panic_threshold=percent_pb2.Percent(value=0.0))
    )


def _service_metadata(svc: service.Service) -> base_pb2.Metadata:
    return protos.metadata(
        {"istio": {"services": [{"host": svc.hostname, "name": svc.name, "namespace": svc.namespace}]}}
    )


def outbound(
    svc: service.Service,
    port: service.ServicePort,
    sans: Iterable[str],
    tls: bool,
    policy: dr.Policy | None = None,
    subset: str = "",
    shards: snapshot.Shards | None = None,
    subset_labels: Mapping[str, str] | None = None,
) -> cluster_pb2.Cluster:
    """`outbound|PORT|SUBSET|HOST`. `tls` is False for proxies without SDS (see proxyview.has_sds).
    `policy` is the DestinationRule's merged policy for this port and subset (trafficpolicy.py):
    its `tls` ISTIO_MUTUAL always uses mTLS, DISABLE never; unset keeps auto mTLS.
    The service's resolution picks the cluster type (cluster_builder.go `buildCluster`): EDS,
    STRICT_DNS over `shards` (the endpoints' host names, in the cluster itself; a subset's
    `subset_labels` select among them), or ORIGINAL_DST
    (a ServiceEntry's resolution NONE, no endpoints)."""
    name = naming.outbound_cluster(svc.hostname, port.port, subset)
    policy = policy or dr.Policy()
    c = _base(name)
    if svc.resolution is service.Resolution.PASSTHROUGH:
        c.type = cluster_pb2.Cluster.ORIGINAL_DST
        c.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    elif svc.resolution is service.Resolution.DNS_LB:
        c.type = cluster_pb2.Cluster.STRICT_DNS
        c.dns_lookup_family = cluster_pb2.Cluster.V4_ONLY
        c.load_assignment.CopyFrom(eds.load_assignment(name, shards, port, eds.View(None, ()), subset_labels))
    else:
        _eds(c)
    c.metadata.CopyFrom(_service_metadata(svc))
    http2 = port.protocol in (service.Protocol.HTTP2, service.Protocol.GRPC)
    options = trafficpolicy.http_protocol_options(policy.connection_pool, http2)
    if options is not None:
        c.typed_extension_protocol_options[HTTP_OPTIONS_KEY].CopyFrom(protos.to_any(options))
    trafficpolicy.apply_load_balancer(c, policy.load_balancer)
    trafficpolicy.apply_connection_pool(c, policy.connection_pool)
    trafficpolicy.apply_outlier_detection(c, policy.outlier_detection)
    trafficpolicy.apply_locality_lb(c, policy)
    if svc.mesh_external and policy.tls is None:
        return c  # auto mTLS never applies outside the mesh (its endpoints carry no tlsMode)
    if tls and policy.tls is not dr.TLSMode.DISABLE:
        ctx = mtls.upstream_tls(naming.sni_name(svc.hostname, port.port, subset), sans, http2)
        if policy.tls is dr.TLSMode.ISTIO_MUTUAL:
            c.transport_socket.CopyFrom(mtls.tls_socket(ctx))
            return c
        c.transport_socket_matches.extend(
            [
                cluster_pb2.Cluster.TransportSocketMatch(
                    name="tlsMode-istio",
                    match=protos.struct({"tlsMode": "istio"}),
                    transport_socket=mtls.tls_socket(ctx),
                ),
                cluster_pb2.Cluster.TransportSocketMatch(
                    name="tlsMode-disabled", match=protos.struct({}), transport_socket=mtls.raw_socket()
                ),
            ]
        )
    return c


def sni_dnat(svc: service.Service, port: service.ServicePort) -> cluster_pb2.Cluster:
    """`outbound_.PORT_._.HOST` for a gateway's AUTO_PASSTHROUGH: the caller's mTLS passes through
    untouched, so no transport socket and no HTTP options."""
    c = _base(naming.sni_name(svc.hostname, port.port))
    _eds(c)
    c.metadata.CopyFrom(_service_metadata(svc))
    return c


def inbound(port: int, localhost: str, protocol: service.Protocol) -> cluster_pb2.Cluster:
    """`inbound|PORT||`: the app, at the pod's localhost address and the target port."""
    name = naming.inbound_cluster(port)
    c = _base(name)
    c.type = cluster_pb2.Cluster.STATIC
    c.load_assignment.CopyFrom(
        endpoint_pb2.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(
                                address=protos.socket_address(localhost, port)
                            )
                        )
                    ]
                )
            ],
        )
    )
    if protocol in (service.Protocol.HTTP2, service.Protocol.GRPC):
        for k, v in _http2_options().items():
            c.typed_extension_protocol_options[k].CopyFrom(v)
    return c


# the source of a sidecar's connections to its own app's original destination: ISTIO_OUTPUT
# returns `-o lo -s 127.0.0.6/32` before anything else, so they are never captured again
INBOUND_PASSTHROUGH_BIND = "127.0.0.6"


def passthrough() -> cluster_pb2.Cluster:
    """`PassthroughCluster`: to the connection's original destination (cluster_builder.go
    `buildDefaultPassthroughCluster`)."""
    c = _base(naming.PASSTHROUGH_CLUSTER)
    c.type = cluster_pb2.Cluster.ORIGINAL_DST
    c.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    return c


def blackhole() -> cluster_pb2.Cluster:
    """`BlackHoleCluster`: STATIC with no endpoint, every connection fails."""
    c = cluster_pb2.Cluster(name=naming.BLACKHOLE_CLUSTER, connect_timeout=protos.duration(CONNECT_TIMEOUT_S))
    c.type = cluster_pb2.Cluster.STATIC
    return c


def inbound_passthrough() -> cluster_pb2.Cluster:
    """`InboundPassthroughCluster`: a captured connection to a port no service declares goes to
    its original destination in the pod, from 127.0.0.6."""
    c = passthrough()
    c.name = naming.INBOUND_PASSTHROUGH_CLUSTER
    c.upstream_bind_config.CopyFrom(
        address_pb2.BindConfig(
            source_address=address_pb2.SocketAddress(address=INBOUND_PASSTHROUGH_BIND, port_value=0)
        )
    )
    return c


def cluster_ports(svc: service.Service) -> tuple[service.ServicePort, ...]:
    """The ports that get an outbound cluster (Istio skips UDP; ExternalName services have no EDS)."""
    if svc.external_name:
        return ()
    return tuple(p for p in svc.ports if p.protocol is not service.Protocol.UDP)


def trust_domain(m: mesh.MeshConfig) -> str:
    return m.trust_domain or "cluster.local"
