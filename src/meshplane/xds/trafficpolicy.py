"""A DestinationRule's traffic policy as Envoy cluster and route settings.

As Istio's pilot/pkg/networking/core/cluster_traffic_policy.go (applyLoadBalancer,
applyConnectionPool, applyOutlierDetection) and route/route.go (consistentHashToHashPolicy):
- loadBalancer.simple → lb_policy (LEAST_CONN is LEAST_REQUEST; PASSTHROUGH makes the cluster
  ORIGINAL_DST with CLUSTER_PROVIDED); consistentHash → RING_HASH (minimumRingSize, default 1024)
  or MAGLEV (tableSize), and the route's hash_policy (header, cookie, source IP, query parameter);
- connectionPool → the default-priority circuit breaker thresholds (maxConnections,
  http1MaxPendingRequests, http2MaxRequests, maxRetries), connect_timeout, TCP keepalive, and
  HttpProtocolOptions (maxRequestsPerConnection, idleTimeout, maxConnectionDuration,
  maxConcurrentStreams);
- outlierDetection → outlier_detection (success-rate ejection off; enforcing 100% for the
  consecutive-error kinds that are > 0) and minHealthPercent → the panic threshold;
- loadBalancer.localityLbSetting → LocalityWeightedLbConfig when `distribute` is set, or when
  `failover`/`failoverPriority` is set on a cluster with outlierDetection (applyLocalityLoadBalancer;
  the EDS priorities and weights are xds/locality.py). Istio sets no overprovisioning factor, so
  Envoy's default (140) applies.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import address_pb2, protocol_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import wrappers_pb2

from meshplane.networking import destinationrule as dr
from meshplane.xds import protos

DEFAULT_RING_SIZE = 1024  # Istio's default minimumRingSize
_SIMPLE = {
    dr.SimpleLB.ROUND_ROBIN: cluster_pb2.Cluster.ROUND_ROBIN,
    dr.SimpleLB.LEAST_REQUEST: cluster_pb2.Cluster.LEAST_REQUEST,
    dr.SimpleLB.LEAST_CONN: cluster_pb2.Cluster.LEAST_REQUEST,
    dr.SimpleLB.RANDOM: cluster_pb2.Cluster.RANDOM,
}


def _u32(value: int) -> wrappers_pb2.UInt32Value:
    return wrappers_pb2.UInt32Value(value=value)


def apply_load_balancer(c: cluster_pb2.Cluster, lb: dr.LoadBalancer | None) -> None:
    if lb is None:
        return
    if lb.simple is dr.SimpleLB.PASSTHROUGH:
        c.ClearField("eds_cluster_config")
        c.type = cluster_pb2.Cluster.ORIGINAL_DST
        c.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    elif lb.simple is not None and lb.simple in _SIMPLE:
        c.lb_policy = _SIMPLE[lb.simple]
    h = lb.consistent_hash
    if h is None:
        return
    if h.algorithm is dr.HashAlgorithm.MAGLEV:
        c.lb_policy = cluster_pb2.Cluster.MAGLEV
        if h.size is not None:
            c.maglev_lb_config.table_size.value = h.size
    else:
        c.lb_policy = cluster_pb2.Cluster.RING_HASH
        c.ring_hash_lb_config.minimum_ring_size.value = h.size or DEFAULT_RING_SIZE


def apply_connection_pool(c: cluster_pb2.Cluster, pool: dr.ConnectionPool | None) -> None:
    if pool is None:
        return
    th = c.circuit_breakers.thresholds[0]
    if pool.max_connections is not None:
        th.max_connections.value = pool.max_connections
    if pool.http1_max_pending_requests is not None:
        th.max_pending_requests.value = pool.http1_max_pending_requests
    if pool.http2_max_requests is not None:
        th.max_requests.value = pool.http2_max_requests
    if pool.max_retries is not None:
        th.max_retries.value = pool.max_retries
    if pool.connect_timeout_seconds is not None:
        c.connect_timeout.CopyFrom(protos.duration(pool.connect_timeout_seconds))
    k = pool.tcp_keepalive
    if k is not None:
        keepalive = address_pb2.TcpKeepalive()
        if k.probes is not None:
            keepalive.keepalive_probes.value = k.probes
        if k.time_seconds is not None:
            keepalive.keepalive_time.value = max(1, int(k.time_seconds))
        if k.interval_seconds is not None:
            keepalive.keepalive_interval.value = max(1, int(k.interval_seconds))
        c.upstream_connection_options.tcp_keepalive.CopyFrom(keepalive)


def http_protocol_options(
    pool: dr.ConnectionPool | None, http2: bool
) -> http_protocol_options_pb2.HttpProtocolOptions | None:
    """The cluster's HttpProtocolOptions: explicit HTTP/2 for HTTP2/GRPC ports (as before), plus the
    connection pool's per-connection settings; None when neither applies (Envoy's defaults)."""
    common = protocol_pb2.HttpProtocolOptions()
    if pool is not None:
        if pool.max_requests_per_connection:
            common.max_requests_per_connection.value = pool.max_requests_per_connection
        if pool.idle_timeout_seconds is not None:
            common.idle_timeout.CopyFrom(protos.duration(pool.idle_timeout_seconds))
        if pool.max_connection_duration_seconds is not None:
            common.max_connection_duration.CopyFrom(protos.duration(pool.max_connection_duration_seconds))
    streams = pool.max_concurrent_streams if pool is not None else None
    if not http2 and common.ByteSize() == 0:
        return None
    explicit = http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig()
    if http2:
        h2 = protocol_pb2.Http2ProtocolOptions()
        if streams is not None:
            h2.max_concurrent_streams.value = streams
        explicit.http2_protocol_options.CopyFrom(h2)
    else:
        explicit.http_protocol_options.CopyFrom(protocol_pb2.Http1ProtocolOptions())
    out = http_protocol_options_pb2.HttpProtocolOptions(explicit_http_config=explicit)
    if common.ByteSize():
        out.common_http_protocol_options.CopyFrom(common)
    return out


def apply_outlier_detection(c: cluster_pb2.Cluster, od: dr.OutlierDetection | None) -> None:
    if od is None:
        return
    out = outlier_detection_pb2.OutlierDetection(enforcing_success_rate=_u32(0))
    if od.consecutive_5xx_errors is not None:
        v = od.consecutive_5xx_errors
        out.consecutive_5xx.value = v
        out.enforcing_consecutive_5xx.value = 100 if v > 0 else 0
    if od.consecutive_gateway_errors is not None:
        v = od.consecutive_gateway_errors
        out.consecutive_gateway_failure.value = v
        out.enforcing_consecutive_gateway_failure.value = 100 if v > 0 else 0
    if od.interval_seconds is not None:
        out.interval.CopyFrom(protos.duration(od.interval_seconds))
    if od.base_ejection_time_seconds is not None:
        out.base_ejection_time.CopyFrom(protos.duration(od.base_ejection_time_seconds))
    if od.max_ejection_percent is not None:
        out.max_ejection_percent.value = od.max_ejection_percent
    c.outlier_detection.CopyFrom(out)
    if od.min_health_percent is not None:
        c.common_lb_config.healthy_panic_threshold.CopyFrom(
            percent_pb2.Percent(value=float(od.min_health_percent))
        )


def apply_locality_lb(c: cluster_pb2.Cluster, policy: dr.Policy) -> None:
    lb = policy.load_balancer.locality_lb if policy.load_balancer is not None else None
    if lb is None or lb.enabled is False:
        return
    failover = policy.outlier_detection is not None and bool(lb.failover or lb.failover_priority)
    if lb.distribute or failover:
        c.common_lb_config.locality_weighted_lb_config.SetInParent()


def hash_policy(lb: dr.LoadBalancer | None) -> list[route_components_pb2.RouteAction.HashPolicy]:
    """The route's hash policy for a consistent-hash destination (route.go consistentHashToHashPolicy)."""
    h = lb.consistent_hash if lb is not None else None
    if h is None:
        return []
    HP = route_components_pb2.RouteAction.HashPolicy
    if h.header:
        return [HP(header=HP.Header(header_name=h.header))]
    if h.cookie is not None:
        cookie = HP.Cookie(name=h.cookie.name, path=h.cookie.path)
        if h.cookie.ttl_seconds is not None:
            cookie.ttl.CopyFrom(protos.duration(h.cookie.ttl_seconds))
        return [HP(cookie=cookie)]
    if h.source_ip:
        return [HP(connection_properties=HP.ConnectionProperties(source_ip=True))]
    return [HP(query_parameter=HP.QueryParameter(name=h.query_parameter))]
