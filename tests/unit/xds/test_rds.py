from __future__ import annotations

from collections import Counter

from meshplane.model.ids import ClusterId
from meshplane.xds import rds
from tests.support import meshdata as md


def _vhosts(services, ns="sample", cluster="cluster1"):  # type: ignore[no-untyped-def]
    c = md.ctx(services)
    rc = rds.outbound(c.services, ns, ClusterId(cluster), "15001")
    return rc, {vh.name: list(vh.domains) for vh in rc.virtual_hosts}


def test_domains_for_own_namespace() -> None:
    s = md.svc(vips={"cluster1": ["10.96.0.10"], "cluster2": ["10.97.0.10"]})
    rc, vh = _vhosts([s])
    assert rc.name == "15001"
    assert vh == {
        "helloworld.sample.svc.cluster.local:5000": [
            "helloworld:5000",
            "helloworld.sample:5000",
            "helloworld.sample.svc:5000",
            "helloworld.sample.svc.cluster.local:5000",
            "10.96.0.10:5000",
        ]
    }
    route = rc.virtual_hosts[0].routes[0]
    assert route.match.prefix == "/"
    assert route.route.cluster == "outbound|5000||helloworld.sample.svc.cluster.local"
    assert route.route.timeout.seconds == 0 and route.route.timeout.nanos == 0
    assert route.route.retry_policy.num_retries.value == 2


def test_other_namespace_has_no_short_name_and_other_cluster_vip_is_not_used() -> None:
    s = md.svc(vips={"cluster2": ["10.97.0.10"]})
    _, vh = _vhosts([s], ns="other", cluster="cluster1")
    assert vh["helloworld.sample.svc.cluster.local:5000"] == [
        "helloworld.sample:5000",
        "helloworld.sample.svc:5000",
        "helloworld.sample.svc.cluster.local:5000",
    ]


def test_port_80_also_gets_port_less_names() -> None:
    s = md.svc("web", ports=(("http", 80),))
    _, vh = _vhosts([s])
    assert set(vh["web.sample.svc.cluster.local:80"]) >= {
        "web",
        "web.sample",
        "web:80",
        "web.sample.svc.cluster.local",
    }


def test_only_http_ports() -> None:
    s = md.svc("db", ports=(("tcp-db", 5432), ("http-admin", 8080)))
    _, vh = _vhosts([s])
    assert list(vh) == ["db.sample.svc.cluster.local:8080"]


def test_domains_unique_even_when_services_collide() -> None:
    a = md.svc("a", vips={"cluster1": ["10.96.0.1"]})
    b = md.svc("b", vips={"cluster1": ["10.96.0.1"]})  # the same ClusterIP, e.g. a stale registry entry
    web = md.svc("web", ports=(("http", 80), ("http-alt", 80)))  # two ports with the same number
    rc, _ = _vhosts([a, b, web])
    every = [d for vh in rc.virtual_hosts for d in vh.domains]
    assert not [d for d, n in Counter(every).items() if n > 1]
    owners = {d: vh.name for vh in rc.virtual_hosts for d in vh.domains}
    assert owners["10.96.0.1:5000"] == "a.sample.svc.cluster.local:5000"  # first in hostname order wins
