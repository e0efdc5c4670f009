"""agent.stats: Envoy's admin JSON reduced to what the console scrapes."""

from meshplane.agent import stats

CLUSTERS = {
    "cluster_statuses": [
        {
            "name": "outbound|5000||helloworld.sample.svc.cluster.local",
            "host_statuses": [
                {
                    "address": {"socket_address": {"address": "198.18.2.5", "port_value": 5000}},
                    "stats": [{"name": "rq_total", "value": "12"}, {"name": "rq_error", "value": "3"}],
                    "health_status": {"eds_health_status": "HEALTHY"},
                    "locality": {"region": "us-east", "zone": "a"},
                },
                {
                    "address": {"socket_address": {"address": "198.18.1.7", "port_value": 5000}},
                    "stats": [{"name": "rq_total"}, {"name": "rq_error"}],
                    "health_status": {"eds_health_status": "UNHEALTHY"},
                },
            ],
        },
        {"name": "BlackHoleCluster", "host_statuses": []},
    ]
}
STATS = {
    "stats": [
        {"name": "cluster.outbound|5000||helloworld.sample.svc.cluster.local.ssl.handshake", "value": 4},
        {
            "histograms": [
                {
                    "name": "cluster.outbound|5000||helloworld.sample.svc.cluster.local.upstream_rq_time",
                    "buckets": [{"upper_bound": 0.5, "cumulative": 2}, {"upper_bound": 1, "cumulative": 12}],
                },
                {"name": "cluster.unknown.upstream_rq_time", "buckets": []},
            ]
        },
    ]
}


def test_upstreams_per_host_counters_buckets_and_tls() -> None:
    (hw, blackhole) = stats.upstreams(CLUSTERS, STATS)
    assert hw["ssl_handshake"] == 4 and hw["rq_time_ms"] == [[0.5, 2.0], [1.0, 12.0]]
    assert hw["hosts"][0] == {
        "address": "198.18.2.5", "port": 5000, "locality": "us-east/a", "health": "HEALTHY",
        "rq_total": 12, "rq_error": 3, "rq_success": 0, "rq_timeout": 0, "rq_active": 0,
    }  # fmt: skip
    assert hw["hosts"][1]["rq_total"] == 0 and hw["hosts"][1]["health"] == "UNHEALTHY"
    assert blackhole == {"name": "BlackHoleCluster", "hosts": [], "rq_time_ms": [], "ssl_handshake": 0}
    # used=1: only hosts that were sent requests, only clusters that have one
    (only,) = stats.upstreams(CLUSTERS, STATS, used=True)
    assert [h["address"] for h in only["hosts"]] == ["198.18.2.5"]


def test_config_summary_names_only() -> None:
    dump = {
        "configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {"node": {}}},
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
                "static_clusters": [{"cluster": {"name": "sds-grpc"}}],
                "dynamic_active_clusters": [{"cluster": {"name": "outbound|5000||a.b.svc.cluster.local"}}],
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                "dynamic_listeners": [
                    {
                        "name": "virtualOutbound",
                        "active_state": {
                            "listener": {
                                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15001}}
                            }
                        },
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
                "dynamic_active_secrets": [
                    {"name": "default", "secret": {"tls_certificate": {"private_key": "x"}}}
                ],
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "dynamic_route_configs": [
                    {"route_config": {"name": "5000", "virtual_hosts": [{"name": "a:5000"}]}}
                ],
            },
        ]
    }
    s = stats.config_summary(dump)
    assert s == {
        "clusters": ["outbound|5000||a.b.svc.cluster.local", "sds-grpc"],
        "listeners": [{"name": "virtualOutbound", "address": "0.0.0.0:15001"}],
        "routes": [{"name": "5000", "virtual_hosts": ["a:5000"]}],
    }
    assert "private_key" not in str(s)
