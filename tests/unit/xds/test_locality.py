"""Locality load balancing in the endpoints a sidecar receives: EDS priorities and weights relative
to the proxy's locality, as Istio's loadbalancer.go (ApplyLocalityLoadBalancer) sets them, and
Envoy accepting the result."""

from __future__ import annotations

import dataclasses
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from meshplane.model import endpoint
from meshplane.model import proxy as proxy_model
from meshplane.networking import config as networking_config
from meshplane.xds import generator, resources
from tests.support import envoyproc
from tests.support import meshdata as md
from tests.unit.xds.test_envoy_validate import _bootstrap, _decode

HW = "helloworld.sample.svc.cluster.local"
CLUSTER = f"outbound|5000||{HW}"
HELLO = md.svc(vips={"cluster1": ["10.96.0.10"]})
OUTLIER = {"consecutive5xxErrors": 1, "interval": "1s", "baseEjectionTime": "1m"}
L = endpoint.Locality


def _ep(address: str, loc: endpoint.Locality, cluster: str = "cluster1", **labels: str) -> endpoint.Endpoint:
    return md.ep(address, cluster, tls=True, labels={"app": "helloworld", **labels}, locality=loc)


# the proxy (127.0.1.10) sits in region1/zone1/sub1
EPS = md.shards(
    _ep("127.0.1.1", L("region1", "zone1", "sub1")),  # same subzone
    _ep("127.0.1.2", L("region1", "zone1", "sub2")),  # same zone
    _ep("127.0.2.1", L("region1", "zone2", "sub1"), "cluster2"),  # same region
    _ep("127.0.3.1", L("region2", "zone3", "sub1"), "cluster2"),  # other region
    _ep("127.0.4.1", L("region3", "zone4", "sub1"), "cluster2"),  # another region
)
PROXY = dataclasses.replace(md.proxy(), locality=L("region1", "zone1", "sub1"))


def _generate(
    policy: dict[str, Any] | None,
    eps: Any = EPS,
    proxy: proxy_model.Proxy = PROXY,
) -> tuple[endpoint_pb2.ClusterLoadAssignment, cluster_pb2.Cluster, Any]:
    docs = []
    if policy is not None:
        docs = [
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "hw", "namespace": "sample"},
                "spec": {"host": "helloworld", "trafficPolicy": policy},
            }
        ]
    cfg, problems = networking_config.build(docs)
    assert problems == []
    c = md.ctx([HELLO], {HELLO.hostname: eps}, networking=cfg)
    g = generator.Generator()
    cla = {
        a.cluster_name: a
        for a in _decode(g.generate(resources.TYPE_EDS, proxy, c, None), endpoint_pb2.ClusterLoadAssignment)
    }[CLUSTER]
    cluster = {
        x.name: x for x in _decode(g.generate(resources.TYPE_CDS, proxy, c, None), cluster_pb2.Cluster)
    }[CLUSTER]
    return cla, cluster, c


def _priorities(cla: endpoint_pb2.ClusterLoadAssignment) -> dict[str, int]:
    return {
        e.endpoint.address.socket_address.address: g.priority for g in cla.endpoints for e in g.lb_endpoints
    }


def test_with_outlier_detection_the_proxys_subzone_zone_region_come_first_by_default() -> None:
    cla, cluster, _ = _generate({"outlierDetection": OUTLIER})
    assert _priorities(cla) == {
        "127.0.1.1": 0,  # same region/zone/subzone
        "127.0.1.2": 1,  # same region/zone
        "127.0.2.1": 2,  # same region
        "127.0.3.1": 3,  # other regions
        "127.0.4.1": 3,
    }
    # default failover sets no locality-weighted config (Istio: only with failover/distribute given)
    assert not cluster.common_lb_config.HasField("locality_weighted_lb_config")


def test_priorities_are_compacted_and_follow_the_proxys_own_endpoint_locality() -> None:
    # the lab's layout: cluster1 region1/zone1, cluster2 region1/zone2. The proxy's node names no
    # locality; its own endpoint (its cluster, its address) gives it, as istiod takes it
    hello = md.shards(
        _ep("127.0.1.5", L("region1", "zone1")), _ep("127.0.2.5", L("region1", "zone2"), "cluster2")
    )
    sleep = md.svc("sleep", ports=(("http", 80),))
    sleeps = md.shards(
        md.ep("127.0.1.10", "cluster1", {"http": 80}, locality=L("region1", "zone1")),
        md.ep("127.0.2.10", "cluster2", {"http": 80}, locality=L("region1", "zone2")),
    )
    cfg, _ = networking_config.build(
        [
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "hw", "namespace": "sample"},
                "spec": {"host": "helloworld", "trafficPolicy": {"outlierDetection": OUTLIER}},
            }
        ]
    )
    c = md.ctx([HELLO, sleep], {HELLO.hostname: hello, sleep.hostname: sleeps}, networking=cfg)
    g = generator.Generator()

    def eds(p: proxy_model.Proxy) -> dict[str, int]:
        out = _decode(g.generate(resources.TYPE_EDS, p, c, None), endpoint_pb2.ClusterLoadAssignment)
        return _priorities({a.cluster_name: a for a in out}[CLUSTER])

    assert eds(md.proxy()) == {"127.0.1.5": 0, "127.0.2.5": 1}  # zone2 is priority 2, compacted to 1
    assert eds(md.proxy("127.0.2.10", "cluster2")) == {"127.0.1.5": 1, "127.0.2.5": 0}
    # a proxy without an endpoint of its own falls back to its node's locality
    lone = dataclasses.replace(md.proxy("127.0.1.99"), locality=L("region1", "zone2"))
    assert eds(lone) == {"127.0.1.5": 1, "127.0.2.5": 0}


def test_no_priorities_without_outlier_detection_or_when_disabled() -> None:
    for policy in (
        None,
        {"connectionPool": {"tcp": {"maxConnections": 10}}},
        {"outlierDetection": OUTLIER, "loadBalancer": {"localityLbSetting": {"enabled": False}}},
    ):
        cla, cluster, _ = _generate(policy)
        assert set(_priorities(cla).values()) == {0}, policy
        assert not cluster.common_lb_config.HasField("locality_weighted_lb_config")


def test_failover_maps_the_proxys_region_to_the_next_one() -> None:
    cla, cluster, _ = _generate(
        {
            "outlierDetection": OUTLIER,
            "loadBalancer": {"localityLbSetting": {"failover": [{"from": "region1", "to": "region3"}]}},
        }
    )
    # region3 (named by failover) before region2 (priority 4 in Istio), compacted
    assert _priorities(cla) == {
        "127.0.1.1": 0,
        "127.0.1.2": 1,
        "127.0.2.1": 2,
        "127.0.4.1": 3,
        "127.0.3.1": 4,
    }
    assert cluster.common_lb_config.HasField("locality_weighted_lb_config")
    # a failover entry for another region changes nothing for this proxy
    cla, _, _ = _generate(
        {
            "outlierDetection": OUTLIER,
            "loadBalancer": {"localityLbSetting": {"failover": [{"from": "region2", "to": "region3"}]}},
        }
    )
    assert _priorities(cla)["127.0.3.1"] == _priorities(cla)["127.0.4.1"] == 3


def test_failover_priority_orders_by_matching_labels() -> None:
    eps = md.shards(
        _ep("127.0.1.1", L("region1", "zone1"), version="v1"),
        _ep("127.0.1.2", L("region1", "zone1"), version="v2"),
        _ep("127.0.2.1", L("region1", "zone2"), "cluster2", version="v1"),
        _ep("127.0.2.2", L("region1", "zone2"), "cluster2", version="v2"),
    )
    proxy = dataclasses.replace(md.proxy(labels={"version": "v1"}), locality=L("region1", "zone1"))
    # [version, cluster]: all match → 0; version matches, cluster not → 1; version differs → 2
    cla, cluster, _ = _generate(
        {
            "outlierDetection": OUTLIER,
            "loadBalancer": {
                "localityLbSetting": {"failoverPriority": ["version", "topology.istio.io/cluster"]}
            },
        },
        eps,
        proxy,
    )
    assert _priorities(cla) == {"127.0.1.1": 0, "127.0.2.1": 1, "127.0.1.2": 2, "127.0.2.2": 2}
    assert cluster.common_lb_config.HasField("locality_weighted_lb_config")
    # a `key=value` entry compares endpoints with that value instead of the proxy's
    cla, _, _ = _generate(
        {
            "outlierDetection": OUTLIER,
            "loadBalancer": {"localityLbSetting": {"failoverPriority": ["version=v2"]}},
        },
        eps,
        proxy,
    )
    assert _priorities(cla) == {"127.0.1.2": 0, "127.0.2.2": 0, "127.0.1.1": 1, "127.0.2.1": 1}
    # with failover too, the region/zone priority refines each label priority (priority*5 + lb)
    eps3 = md.shards(
        *[e for shard in eps.values() for e in shard],
        _ep("127.0.3.1", L("region2", "z"), "cluster2", version="v1"),
        _ep("127.0.4.1", L("region3", "z"), "cluster2", version="v1"),
    )
    cla, _, _ = _generate(
        {
            "outlierDetection": OUTLIER,
            "loadBalancer": {
                "localityLbSetting": {
                    "failoverPriority": ["version"],
                    "failover": [{"from": "region1", "to": "region3"}],
                }
            },
        },
        eps3,
        proxy,
    )
    assert _priorities(cla) == {
        "127.0.1.1": 0,  # v1, same zone
        "127.0.2.1": 1,  # v1, same region
        "127.0.4.1": 2,  # v1, failover region
        "127.0.3.1": 3,  # v1, other region
        "127.0.1.2": 4,  # v2, same zone
        "127.0.2.2": 5,  # v2, same region
    }


def test_distribute_weights_localities_for_proxies_in_from() -> None:
    policy = {
        "loadBalancer": {
            "localityLbSetting": {
                "distribute": [
                    {"from": "region1/zone1/*", "to": {"region1/zone1/*": 80, "region1/zone2/*": 20}},
                ]
            }
        }
    }
    cla, cluster, _ = _generate(policy)  # distribute needs no outlier detection
    weights = {
        (g.locality.region, g.locality.zone, g.locality.sub_zone): (
            g.load_balancing_weight.value,
            len(g.lb_endpoints),
        )
        for g in cla.endpoints
    }
    # zone1 has two localities of one endpoint each: 80 split by their weights (ceil 40 each)
    assert weights == {
        ("region1", "zone1", "sub1"): (40, 1),
        ("region1", "zone1", "sub2"): (40, 1),
        ("region1", "zone2", "sub1"): (20, 1),
        ("region2", "zone3", "sub1"): (1, 0),  # not named by `to`: emptied
        ("region3", "zone4", "sub1"): (1, 0),
    }
    assert set(_priorities(cla).values()) == {0}
    assert cluster.common_lb_config.HasField("locality_weighted_lb_config")
    # a proxy outside `from` keeps the plain weights
    other = dataclasses.replace(PROXY, locality=L("region2", "zone3", "sub1"))
    cla, _, _ = _generate(policy, proxy=other)
    assert [g.load_balancing_weight.value for g in cla.endpoints] == [1, 1, 1, 1, 1]
    assert all(len(g.lb_endpoints) == 1 for g in cla.endpoints)


def test_each_locality_gets_its_own_eds_and_envoy_accepts_it() -> None:
    policy = {
        "outlierDetection": OUTLIER,
        "loadBalancer": {"localityLbSetting": {"failover": [{"from": "region1", "to": "region3"}]}},
    }
    cla, cluster, c = _generate(policy)
    other = dataclasses.replace(PROXY, locality=L("region2", "zone3", "sub1"))
    g = generator.Generator()
    for_other = {
        a.cluster_name: a
        for a in _decode(g.generate(resources.TYPE_EDS, other, c, None), endpoint_pb2.ClusterLoadAssignment)
    }[CLUSTER]
    assert _priorities(for_other)["127.0.3.1"] == 0 and _priorities(cla)["127.0.3.1"] == 4
    dist, dist_cluster, _ = _generate(
        {
            "loadBalancer": {
                "localityLbSetting": {"distribute": [{"from": "region1/*", "to": {"region1/*": 100}}]}
            }
        }
    )
    clusters = [
        _static("locality-failover", cluster, cla),
        _static("locality-distribute", dist_cluster, dist),
    ]
    result = envoyproc.validate(_bootstrap(clusters, []))
    assert result.returncode == 0, result.stdout + result.stderr


def _static(
    name: str, cluster: cluster_pb2.Cluster, cla: endpoint_pb2.ClusterLoadAssignment
) -> cluster_pb2.Cluster:
    """The EDS cluster with its assignment inline, so `envoy --mode validate` checks both."""
    static = cluster_pb2.Cluster()
    static.CopyFrom(cluster)
    static.name = name
    static.ClearField("eds_cluster_config")
    static.type = cluster_pb2.Cluster.STATIC
    static.load_assignment.CopyFrom(
        endpoint_pb2.ClusterLoadAssignment(cluster_name=name, endpoints=cla.endpoints)
    )
    return static
