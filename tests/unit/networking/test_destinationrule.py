"""DestinationRule parsing: Istio's fields, host resolution, merge rules and refusals by path."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.networking import config, destinationrule, errors


def _dr(spec: dict[str, Any], name: str = "hw", namespace: str = "sample", ts: str = "") -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": namespace}
    if ts:
        md["creationTimestamp"] = ts
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": md,
        "spec": spec,
    }


SUBSETS = [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]


def test_short_host_is_relative_to_the_rules_namespace() -> None:
    d = destinationrule.parse(_dr({"host": "helloworld", "subsets": SUBSETS}))
    assert d.host == "helloworld.sample.svc.cluster.local"
    assert [s.name for s in d.subsets] == ["v1", "v2"]
    assert d.subset("v2") is not None and d.subset("v2").selects({"app": "hw", "version": "v2"})  # type: ignore[union-attr]
    assert not d.subset("v1").selects({"version": "v2"})  # type: ignore[union-attr]
    fq = destinationrule.parse(_dr({"host": "helloworld.other.svc.cluster.local"}))
    assert fq.host == "helloworld.other.svc.cluster.local"


def test_full_traffic_policy_is_parsed() -> None:
    d = destinationrule.parse(
        _dr(
            {
                "host": "helloworld",
                "trafficPolicy": {
                    "loadBalancer": {
                        "consistentHash": {
                            "httpCookie": {"name": "u", "ttl": "10s"},
                            "maglev": {"tableSize": 65537},
                        }
                    },
                    "connectionPool": {
                        "tcp": {
                            "maxConnections": 7,
                            "connectTimeout": "250ms",
                            "tcpKeepalive": {"time": "30s"},
                        },
                        "http": {"http1MaxPendingRequests": 3, "maxRetries": 2, "idleTimeout": "5s"},
                    },
                    "outlierDetection": {
                        "consecutive5xxErrors": 2,
                        "interval": "1s",
                        "baseEjectionTime": "30s",
                    },
                    "tls": {"mode": "ISTIO_MUTUAL"},
                },
            }
        )
    )
    p = d.policy(5000)
    assert p.load_balancer is not None and p.load_balancer.consistent_hash is not None
    h = p.load_balancer.consistent_hash
    assert (h.cookie, h.algorithm, h.size) == (
        destinationrule.HashCookie("u", "", 10.0),
        destinationrule.HashAlgorithm.MAGLEV,
        65537,
    )
    assert p.connection_pool is not None and p.connection_pool.connect_timeout_seconds == 0.25
    assert p.outlier_detection == destinationrule.OutlierDetection(2, None, 1.0, 30.0)
    assert p.tls is destinationrule.TLSMode.ISTIO_MUTUAL


def test_merge_rules_are_istios() -> None:
    """Port level replaces all four settings (no inheritance); a subset replaces what it sets; a
    subset's port level replaces all four again (MergeSubsetTrafficPolicy)."""
    d = destinationrule.parse(
        _dr(
            {
                "host": "helloworld",
                "trafficPolicy": {
                    "loadBalancer": {"simple": "RANDOM"},
                    "tls": {"mode": "DISABLE"},
                    "portLevelSettings": [
                        {"port": {"number": 9000}, "loadBalancer": {"simple": "LEAST_REQUEST"}}
                    ],
                },
                "subsets": [
                    {
                        "name": "v1",
                        "labels": {"version": "v1"},
                        "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}},
                    },
                    {
                        "name": "v2",
                        "labels": {"version": "v2"},
                        "trafficPolicy": {
                            "portLevelSettings": [
                                {"port": {"number": 5000}, "outlierDetection": {"consecutive5xxErrors": 1}}
                            ]
                        },
                    },
                ],
            }
        )
    )
    S = destinationrule.SimpleLB
    assert d.policy(5000) == destinationrule.Policy(
        destinationrule.LoadBalancer(S.RANDOM), tls=destinationrule.TLSMode.DISABLE
    )
    assert d.policy(9000) == destinationrule.Policy(
        destinationrule.LoadBalancer(S.LEAST_REQUEST)
    )  # tls not inherited
    assert d.policy(5000, "v1") == destinationrule.Policy(
        destinationrule.LoadBalancer(S.ROUND_ROBIN), tls=destinationrule.TLSMode.DISABLE
    )
    assert d.policy(5000, "v2") == destinationrule.Policy(
        outlier_detection=destinationrule.OutlierDetection(consecutive_5xx_errors=1)
    )
    assert d.policy(9000, "v2") == d.policy(9000)


@pytest.mark.parametrize(
    ("spec", "path", "text"),
    [
        ({"host": "hw", "subset": []}, "spec.subset", "unknown field"),
        ({"host": "hw", "workloadSelector": {}}, "spec.workloadSelector", "not supported"),
        ({"host": "hw", "exportTo": ["other"]}, "spec.exportTo[0]", "only '.' and '*'"),
        (
            {"host": "hw", "trafficPolicy": {"loadBalancer": {"warmupDurationSecs": "10s"}}},
            "spec.trafficPolicy.loadBalancer.warmupDurationSecs",
            "not supported",
        ),
        (
            {"host": "hw", "trafficPolicy": {"tls": {"mode": "SIMPLE"}}},
            "spec.trafficPolicy.tls.mode",
            "not supported",
        ),
        (
            {"host": "hw", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL", "sni": "x"}}},
            "spec.trafficPolicy.tls.sni",
            "not supported",
        ),
        (
            {"host": "hw", "trafficPolicy": {"loadBalancer": {"simple": "FASTEST"}}},
            "spec.trafficPolicy.loadBalancer.simple",
            "unknown value",
        ),
        (
            {"host": "hw", "trafficPolicy": {"loadBalancer": {"consistentHash": {}}}},
            "spec.trafficPolicy.loadBalancer.consistentHash",
            "exactly one",
        ),
        (
            {"host": "hw", "trafficPolicy": {"outlierDetection": {"interval": "soon"}}},
            "spec.trafficPolicy.outlierDetection.interval",
            "duration",
        ),
        (
            {"host": "hw", "trafficPolicy": {"outlierDetection": {"maxEjectionPercent": 101}}},
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
            "0-100",
        ),
        (
            {"host": "hw", "trafficPolicy": {"connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE"}}}},
            "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy",
            "not supported",
        ),
        ({"host": "hw", "subsets": [{"name": "V1"}]}, "spec.subsets[0].name", "DNS label"),
        ({"host": "hw", "subsets": [{"name": "v1"}, {"name": "v1"}]}, "spec.subsets[1].name", "duplicate"),
        ({"host": "a b"}, "spec.host", "not a DNS name"),
    ],
)
def test_invalid_and_unsupported_fields_are_refused_by_path(
    spec: dict[str, Any], path: str, text: str
) -> None:
    with pytest.raises(errors.ConfigError) as e:
        destinationrule.parse(_dr(spec))
    assert e.value.path == path
    assert text in e.value.problem


def test_lookup_order_and_merging_as_istio() -> None:
    cfg, problems = config.build(
        [
            _dr({"host": "helloworld", "subsets": SUBSETS[:1]}, "a", ts="2026-01-01T00:00:00Z"),
            _dr({"host": "helloworld", "subsets": SUBSETS}, "b", ts="2026-01-02T00:00:00Z"),
            _dr(
                {
                    "host": "helloworld.sample.svc.cluster.local",
                    "trafficPolicy": {"tls": {"mode": "DISABLE"}},
                },
                "c",
                "client",
            ),
            _dr({"host": "*.svc.cluster.local", "exportTo": ["."]}, "wild", "istio-system"),
            _dr({"host": "helloworld.sample.svc.cluster.local"}, "elsewhere", "unrelated"),
            _dr({"host": "helloworld", "trafficPolicy": {"bogus": 1}}, "bad"),
        ]
    )
    assert [str(p.path) for p in problems] == ["spec.trafficPolicy.bogus"]
    host = "helloworld.sample.svc.cluster.local"
    own = cfg.destination_rule(host, "sample")
    assert own is not None and own.name == "a" and [s.name for s in own.subsets] == ["v1", "v2"]  # merged
    client = cfg.destination_rule(host, "client")
    assert client is not None and client.name == "c"  # the proxy's own namespace first
    assert cfg.destination_rule(host, "unrelated") is not None
    other = cfg.destination_rule("x.other.svc.cluster.local", "other")
    assert other is None  # the root rule is exported only to istio-system
    assert cfg.destination_rule("x.other.svc.cluster.local", "istio-system") is not None


def test_deprecated_minimum_ring_size_is_the_ring_size() -> None:
    lb = {"consistentHash": {"httpHeaderName": "x-user", "minimumRingSize": 128}}
    d = destinationrule.parse(_dr({"host": "hw", "trafficPolicy": {"loadBalancer": lb}}))
    h = d.policy(80).load_balancer.consistent_hash  # type: ignore[union-attr]
    assert h is not None and (h.algorithm, h.size) == (destinationrule.HashAlgorithm.RING_HASH, 128)


def test_gateways_only_see_virtual_services_exported_to_their_namespace() -> None:
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "private", "namespace": "sample"},
        "spec": {
            "hosts": ["*"],
            "gateways": ["istio-system/gw"],
            "exportTo": ["."],
            "http": [{"route": [{"destination": {"host": "a"}}]}],
        },
    }
    cfg, problems = config.build([vs])
    assert problems == []
    assert cfg.virtual_services_for("istio-system/gw") == ()
    vs["spec"]["exportTo"] = ["*"]
    cfg, _ = config.build([vs])
    assert [v.key for v in cfg.virtual_services_for("istio-system/gw")] == ["sample/private"]


_LOC = "spec.trafficPolicy.loadBalancer.localityLbSetting"


def _loc(setting: dict[str, Any]) -> dict[str, Any]:
    return {"host": "hw", "trafficPolicy": {"loadBalancer": {"localityLbSetting": setting}}}


def test_locality_lb_setting_is_parsed() -> None:
    d = destinationrule.parse(
        _dr(
            _loc(
                {
                    "enabled": True,
                    "failover": [{"from": "region1", "to": "region2"}],
                    "failoverPriority": ["topology.istio.io/network", "version=v1"],
                }
            )
        )
    )
    lb = d.policy(5000).load_balancer
    assert lb is not None and lb.locality_lb == destinationrule.LocalityLbSetting(
        True, (), (("region1", "region2"),), ("topology.istio.io/network", "version=v1")
    )
    d = destinationrule.parse(
        _dr(
            _loc(
                {
                    "distribute": [
                        {"from": "region1/zone1/*", "to": {"region1/zone1/*": 70, "region1/zone2/*": 30}}
                    ]
                }
            )
        )
    )
    lb = d.policy(5000).load_balancer
    assert lb is not None and lb.locality_lb is not None
    assert lb.locality_lb.distribute == (
        destinationrule.Distribute("region1/zone1/*", (("region1/zone1/*", 70), ("region1/zone2/*", 30))),
    )


@pytest.mark.parametrize(
    ("setting", "path", "text"),
    [
        (
            {"distribute": [{"from": "r1", "to": {"r1": 100}}], "failover": [{"from": "r1", "to": "r2"}]},
            _LOC,
            "can not simultaneously specify 'distribute' and 'failover'",
        ),
        (
            {"failover": [{"from": "r1", "to": "r2"}], "failoverPriority": ["topology.kubernetes.io/zone"]},
            f"{_LOC}.failoverPriority[0]",
            "can not simultaneously set 'failover'",
        ),
        ({"distribute": [{"from": "r1", "to": {"r1": 60, "r2": 30}}]}, f"{_LOC}.distribute[0].to", "!= 100"),
        (
            {"distribute": [{"from": "r1", "to": {"r1": 0, "r2": 100}}]},
            f"{_LOC}.distribute[0].to.r1",
            "1-100",
        ),
        ({"distribute": [{"from": "r1", "to": {"r1/*/z": 100}}]}, f"{_LOC}.distribute[0].to", "wildcard"),
        ({"distribute": [{"from": "r1", "to": {"r1//z": 100}}]}, f"{_LOC}.distribute[0].to", "empty"),
        (
            {"distribute": [{"from": "r1", "to": {"r1": 50, "r1/z1": 50}}]},
            f"{_LOC}.distribute[0].to",
            "overlap",
        ),
        (
            {"distribute": [{"from": "r1/*", "to": {"r1": 100}}, {"from": "r1/z1", "to": {"r1": 100}}]},
            f"{_LOC}.distribute",
            "overlap",
        ),
        ({"failover": [{"from": "r1", "to": "r1"}]}, f"{_LOC}.failover[0]", "different regions"),
        ({"failover": [{"from": "r1/z1", "to": "r2"}]}, f"{_LOC}.failover[0]", "only specify region"),
        ({"failover": [{"from": "r1", "to": "r*"}]}, f"{_LOC}.failover[0]", "wildcard"),
        ({"failover": [{"from": "r1"}]}, f"{_LOC}.failover[0].to", "required"),
        ({"enabled": "yes"}, f"{_LOC}.enabled", "boolean"),
        ({"weights": {}}, f"{_LOC}.weights", "unknown field"),
    ],
)
def test_invalid_locality_lb_settings_are_refused_as_istio_does(
    setting: dict[str, Any], path: str, text: str
) -> None:
    with pytest.raises(errors.ConfigError) as e:
        destinationrule.parse(_dr(_loc(setting)))
    assert e.value.path == path
    assert text in e.value.problem
