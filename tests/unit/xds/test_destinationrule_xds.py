"""A DestinationRule's subsets and traffic policy in the clusters and endpoints a sidecar receives,
and Envoy itself accepting them."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from meshplane.networking import config as networking_config
from meshplane.xds import cds, generator, resources
from tests.support import envoyproc
from tests.support import meshdata as md
from tests.unit.xds.test_envoy_validate import _bootstrap, _decode, _route_holder

HW = "helloworld.sample.svc.cluster.local"
HELLO = md.svc(vips={"cluster1": ["10.96.0.10"]})
EPS = md.shards(
    md.ep("127.0.1.5", "cluster1", tls=True, sa="hw", labels={"app": "helloworld", "version": "v1"}),
    md.ep("127.0.2.5", "cluster2", tls=True, sa="hw", labels={"app": "helloworld", "version": "v2"}),
    md.ep("127.0.2.6", "cluster2", tls=True, sa="hw", labels={"app": "helloworld", "version": "v1"}),
)


def _dr(spec: dict[str, Any], namespace: str = "sample") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "hw", "namespace": namespace},
        "spec": spec,
    }


def _ctx(*docs: dict[str, Any]):  # type: ignore[no-untyped-def]
    cfg, problems = networking_config.build(docs)
    assert problems == []
    return md.ctx([HELLO], {HELLO.hostname: EPS}, networking=cfg)


def _clusters(c, proxy=None) -> dict[str, cluster_pb2.Cluster]:  # type: ignore[no-untyped-def]
    g = generator.Generator()
    out = _decode(g.generate(resources.TYPE_CDS, proxy or md.proxy(), c, None), cluster_pb2.Cluster)
    return {x.name: x for x in out}


SUBSETS = {
    "host": "helloworld",
    "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}],
}


def test_subsets_become_clusters_whose_endpoints_match_the_labels_in_every_cluster() -> None:
    c = _ctx(_dr(SUBSETS))
    clusters = _clusters(c)
    assert {f"outbound|5000||{HW}", f"outbound|5000|v1|{HW}", f"outbound|5000|v2|{HW}"} <= set(clusters)
    v1 = clusters[f"outbound|5000|v1|{HW}"]
    assert v1.eds_cluster_config.service_name == f"outbound|5000|v1|{HW}"
    # auto mTLS keeps working, with the subset's SNI
    tls_match = v1.transport_socket_matches[0]
    assert tls_match.name == "tlsMode-istio"
    g = generator.Generator()
    eds = _decode(g.generate(resources.TYPE_EDS, md.proxy(), c, None), endpoint_pb2.ClusterLoadAssignment)
    by_name = {
        a.cluster_name: sorted(
            e.endpoint.address.socket_address.address for loc in a.endpoints for e in loc.lb_endpoints
        )
        for a in eds
    }
    assert by_name[f"outbound|5000|v1|{HW}"] == ["127.0.1.5", "127.0.2.6"]
    assert by_name[f"outbound|5000|v2|{HW}"] == ["127.0.2.5"]
    assert by_name[f"outbound|5000||{HW}"] == ["127.0.1.5", "127.0.2.5", "127.0.2.6"]
    # asked by name (as Envoy does), an unknown subset yields nothing
    named = g.generate(
        resources.TYPE_EDS, md.proxy(), c, frozenset({f"outbound|5000|v2|{HW}", f"outbound|5000|v9|{HW}"})
    )
    assert [r.name for r in named.resources] == [f"outbound|5000|v2|{HW}"]


def test_a_rule_exported_only_to_its_namespace_does_not_apply_elsewhere() -> None:
    c = _ctx(_dr(SUBSETS | {"host": HW, "exportTo": ["."]}, "client"))
    assert f"outbound|5000|v1|{HW}" in _clusters(c, md.proxy(namespace="client"))
    assert f"outbound|5000|v1|{HW}" not in _clusters(c, md.proxy(namespace="sample"))


def test_load_balancer_settings() -> None:
    def lb(spec: dict[str, Any]) -> cluster_pb2.Cluster:
        return _clusters(_ctx(_dr({"host": "helloworld", "trafficPolicy": {"loadBalancer": spec}})))[
            f"outbound|5000||{HW}"
        ]

    C = cluster_pb2.Cluster
    assert lb({"simple": "LEAST_REQUEST"}).lb_policy == C.LEAST_REQUEST
    assert lb({"simple": "LEAST_CONN"}).lb_policy == C.LEAST_REQUEST
    assert lb({"simple": "RANDOM"}).lb_policy == C.RANDOM
    assert lb({"simple": "ROUND_ROBIN"}).lb_policy == C.ROUND_ROBIN
    passthrough = lb({"simple": "PASSTHROUGH"})
    assert (passthrough.type, passthrough.lb_policy) == (C.ORIGINAL_DST, C.CLUSTER_PROVIDED)
    assert not passthrough.HasField("eds_cluster_config")
    ring = lb({"consistentHash": {"httpHeaderName": "x-user"}})
    assert (ring.lb_policy, ring.ring_hash_lb_config.minimum_ring_size.value) == (C.RING_HASH, 1024)
    sized = lb({"consistentHash": {"useSourceIp": True, "ringHash": {"minimumRingSize": 64}}})
    assert sized.ring_hash_lb_config.minimum_ring_size.value == 64
    maglev = lb({"consistentHash": {"httpQueryParameterName": "u", "maglev": {"tableSize": 65537}}})
    assert (maglev.lb_policy, maglev.maglev_lb_config.table_size.value) == (C.MAGLEV, 65537)


@pytest.mark.parametrize(
    ("spec", "hash_field", "value"),
    [
        ({"httpHeaderName": "x-user"}, "header", "x-user"),
        ({"httpCookie": {"name": "session", "ttl": "60s"}}, "cookie", "session"),
        ({"useSourceIp": True}, "connection_properties", True),
        ({"httpQueryParameterName": "user"}, "query_parameter", "user"),
    ],
)
def test_consistent_hash_puts_a_hash_policy_on_the_services_route(
    spec: dict[str, Any], hash_field: str, value: object
) -> None:
    c = _ctx(_dr({"host": "helloworld", "trafficPolicy": {"loadBalancer": {"consistentHash": spec}}}))
    g = generator.Generator()
    (rc,) = _decode(
        g.generate(
            resources.TYPE_RDS, md.proxy(metadata={"INTERCEPTION_MODE": "REDIRECT"}), c, frozenset({"5000"})
        ),
        route_pb2.RouteConfiguration,
    )
    (hp,) = rc.virtual_hosts[0].routes[0].route.hash_policy
    assert hp.WhichOneof("policy_specifier") == hash_field
    got = getattr(hp, hash_field)
    assert {
        "header": lambda: got.header_name,
        "cookie": lambda: got.name,
        "connection_properties": lambda: got.source_ip,
        "query_parameter": lambda: got.name,
    }[hash_field]() == value


def test_connection_pool_and_outlier_detection() -> None:
    policy = {
        "connectionPool": {
            "tcp": {
                "maxConnections": 10,
                "connectTimeout": "250ms",
                "tcpKeepalive": {"probes": 3, "time": "60s", "interval": "10s"},
                "maxConnectionDuration": "1h",
            },
            "http": {
                "http1MaxPendingRequests": 5,
                "http2MaxRequests": 50,
                "maxRequestsPerConnection": 1,
                "maxRetries": 4,
                "idleTimeout": "30s",
            },
        },
        "outlierDetection": {
            "consecutive5xxErrors": 3,
            "consecutiveGatewayErrors": 0,
            "interval": "2s",
            "baseEjectionTime": "15s",
            "maxEjectionPercent": 50,
            "minHealthPercent": 20,
        },
    }
    c = _clusters(_ctx(_dr({"host": "helloworld", "trafficPolicy": policy})))[f"outbound|5000||{HW}"]
    th = c.circuit_breakers.thresholds[0]
    assert (
        th.max_connections.value,
        th.max_pending_requests.value,
        th.max_requests.value,
        th.max_retries.value,
    ) == (10, 5, 50, 4)
    assert c.connect_timeout.ToMilliseconds() == 250
    ka = c.upstream_connection_options.tcp_keepalive
    assert (ka.keepalive_probes.value, ka.keepalive_time.value, ka.keepalive_interval.value) == (3, 60, 10)
    opts = http_protocol_options_pb2.HttpProtocolOptions()
    assert c.typed_extension_protocol_options[cds.HTTP_OPTIONS_KEY].Unpack(opts)
    common = opts.common_http_protocol_options
    assert (
        common.max_requests_per_connection.value,
        common.idle_timeout.seconds,
        common.max_connection_duration.seconds,
    ) == (1, 30, 3600)
    assert opts.explicit_http_config.HasField("http_protocol_options")  # HTTP/1.1 port stays HTTP/1.1
    od = c.outlier_detection
    assert (od.consecutive_5xx.value, od.enforcing_consecutive_5xx.value) == (3, 100)
    assert (od.consecutive_gateway_failure.value, od.enforcing_consecutive_gateway_failure.value) == (0, 0)
    assert (od.interval.seconds, od.base_ejection_time.seconds, od.max_ejection_percent.value) == (2, 15, 50)
    assert od.enforcing_success_rate.value == 0
    assert c.common_lb_config.healthy_panic_threshold.value == 20


def test_tls_modes() -> None:
    def tls(mode: str, subset_mode: str | None = None) -> dict[str, cluster_pb2.Cluster]:
        sub: dict[str, Any] = {"name": "v1", "labels": {"version": "v1"}}
        if subset_mode:
            sub["trafficPolicy"] = {"tls": {"mode": subset_mode}}
        return _clusters(
            _ctx(_dr({"host": "helloworld", "trafficPolicy": {"tls": {"mode": mode}}, "subsets": [sub]}))
        )

    disabled = tls("DISABLE", "ISTIO_MUTUAL")
    plain = disabled[f"outbound|5000||{HW}"]
    assert not plain.transport_socket_matches and not plain.HasField("transport_socket")
    forced = disabled[f"outbound|5000|v1|{HW}"]
    assert (
        forced.transport_socket.name == "envoy.transport_sockets.tls" and not forced.transport_socket_matches
    )
    assert b"outbound_.5000_.v1_." + HW.encode() in forced.transport_socket.typed_config.value
    mutual = tls("ISTIO_MUTUAL")[f"outbound|5000||{HW}"]
    assert mutual.HasField("transport_socket")
    # no SDS (the proxy cannot hold certificates): plaintext whatever the rule says
    nosds = _clusters(
        _ctx(_dr({"host": "helloworld", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}})),
        md.proxy(metadata={"MESHPLANE_SDS": "false"}),
    )
    assert not nosds[f"outbound|5000||{HW}"].HasField("transport_socket")


@pytest.mark.envoy
def test_envoy_accepts_every_policy_setting() -> None:
    policy = {
        "loadBalancer": {"consistentHash": {"httpCookie": {"name": "s", "path": "/", "ttl": "10s"}}},
        "connectionPool": {
            "tcp": {
                "maxConnections": 10,
                "connectTimeout": "250ms",
                "tcpKeepalive": {"probes": 3, "time": "60s", "interval": "10s"},
                "maxConnectionDuration": "1h",
            },
            "http": {
                "http1MaxPendingRequests": 5,
                "http2MaxRequests": 50,
                "maxRequestsPerConnection": 1,
                "maxRetries": 4,
                "idleTimeout": "30s",
                "maxConcurrentStreams": 8,
            },
        },
        "outlierDetection": {
            "consecutive5xxErrors": 3,
            "consecutiveGatewayErrors": 2,
            "interval": "2s",
            "baseEjectionTime": "15s",
            "maxEjectionPercent": 50,
            "minHealthPercent": 20,
        },
        "portLevelSettings": [
            {
                "port": {"number": 9000},
                "loadBalancer": {"consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 65537}}},
                "connectionPool": {"http": {"maxConcurrentStreams": 8}},
            }
        ],
    }
    web = md.svc("web", ports=(("http", 5000), ("grpc", 9000)), vips={"cluster1": ["10.96.0.11"]})
    cfg, problems = networking_config.build(
        [
            _dr(
                {
                    "host": "web",
                    "trafficPolicy": policy,
                    "subsets": [
                        {
                            "name": "v1",
                            "labels": {"version": "v1"},
                            "trafficPolicy": {
                                "loadBalancer": {"simple": "RANDOM"},
                                "tls": {"mode": "ISTIO_MUTUAL"},
                            },
                        }
                    ],
                }
            )
        ]
    )
    assert problems == []
    c = md.ctx([web], {web.hostname: EPS}, networking=cfg)
    g = generator.Generator()
    p = md.proxy(metadata={"INTERCEPTION_MODE": "REDIRECT"})
    clusters = _decode(g.generate(resources.TYPE_CDS, p, c, None), cluster_pb2.Cluster)
    assert len([x for x in clusters if x.name.startswith("outbound|")]) == 4
    routes = _decode(g.generate(resources.TYPE_RDS, p, c, None), route_pb2.RouteConfiguration)
    result = envoyproc.validate(_bootstrap(clusters, [_route_holder(rc, i) for i, rc in enumerate(routes)]))
    assert result.returncode == 0, result.stdout + result.stderr
