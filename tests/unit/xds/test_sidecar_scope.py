"""A Sidecar's egress hosts and outboundTrafficPolicy in what a sidecar proxy receives: clusters,
endpoints, listeners and route tables only for the services it imports, and results never shared
between proxies of different scopes."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from meshplane.networking import config as networking_config
from meshplane.xds import generator, naming, resources
from tests.support import meshdata as md
from tests.unit.xds.test_envoy_validate import _decode

SERVICES = [
    md.svc("a", "sample", vips={"cluster1": ["10.96.0.1"]}),
    md.svc("b", "sample", ports=(("tcp", 9000),), vips={"cluster1": ["10.96.0.2"]}),
    md.svc("istiod", "istio-system", ports=(("grpc", 15012),), vips={"cluster1": ["10.96.0.3"]}),
    md.svc("c", "other", ports=(("http", 8080),), vips={"cluster1": ["10.96.0.4"]}),
    md.svc("d", "other", ports=(("tcp", 7000),), vips={"cluster1": ["10.96.0.5"]}),
]
EPS = {
    s.hostname: md.shards(md.ep("127.0.1.5", namespace=s.namespace, ports={p.name: p.port for p in s.ports}))
    for s in SERVICES
}


def _sidecar(spec: dict[str, Any], namespace: str = "sample", name: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _ctx(*docs: dict[str, Any]):  # type: ignore[no-untyped-def]
    cfg, problems = networking_config.build(docs)
    assert problems == []
    return md.ctx(SERVICES, EPS, networking=cfg)


def _hosts(names: list[str]) -> set[str]:
    return {n.rsplit("|", 1)[1] for n in names if n.startswith("outbound|")}


SCOPED = _sidecar({"egress": [{"hosts": ["./*", "istio-system/*"]}]})
IN_SAMPLE = {
    "a.sample.svc.cluster.local",
    "b.sample.svc.cluster.local",
    "istiod.istio-system.svc.cluster.local",
}
ALL = IN_SAMPLE | {"c.other.svc.cluster.local", "d.other.svc.cluster.local"}


def test_scoped_proxy_gets_only_imported_services_and_unscoped_gets_all_from_one_generator() -> None:
    c = _ctx(SCOPED)
    g = generator.Generator()  # one cache for both proxies: the scopes must not share results
    scoped, unscoped = md.proxy(namespace="sample"), md.proxy(namespace="other", pod="o")
    for _ in range(2):  # second round comes from the cache
        for proxy, want in ((scoped, IN_SAMPLE), (unscoped, ALL)):
            cds = _decode(g.generate(resources.TYPE_CDS, proxy, c, None), cluster_pb2.Cluster)
            assert _hosts([x.name for x in cds]) == want
            eds = _decode(g.generate(resources.TYPE_EDS, proxy, c, None), endpoint_pb2.ClusterLoadAssignment)
            assert _hosts([x.cluster_name for x in eds]) == want
            lds = _decode(g.generate(resources.TYPE_LDS, proxy, c, None), listener_pb2.Listener)
            vips = {x.name for x in lds if x.name.startswith("10.96.")}
            # TCP services get a VIP_PORT listener: b (sample) always, d (other) only unscoped
            assert ("10.96.0.5_7000" in vips) == (want == ALL)
            assert "10.96.0.2_9000" in vips
            rds = _decode(g.generate(resources.TYPE_RDS, proxy, c, None), route_pb2.RouteConfiguration)
            tables = {r.name for r in rds}
            # the HTTP port 8080 of c (other) has a route table only for the unscoped proxy
            assert ("8080" in tables) == (want == ALL)
    # asked by name for an invisible cluster, the scoped proxy gets nothing
    hidden = "outbound|8080||c.other.svc.cluster.local"
    assert g.generate(resources.TYPE_EDS, scoped, c, frozenset({hidden})).resources == ()
    assert [r.name for r in g.generate(resources.TYPE_EDS, unscoped, c, frozenset({hidden})).resources] == [
        hidden
    ]


def test_inbound_side_is_not_scoped() -> None:
    # the proxy is an endpoint of c (other) but imports only istio-system: its inbound cluster stays
    c = _ctx(_sidecar({"egress": [{"hosts": ["istio-system/*"]}]}, namespace="other"))
    proxy = md.proxy(ip="127.0.1.5", namespace="other", pod="c")
    names = [x.name for x in _decode(g_cds(c, proxy), cluster_pb2.Cluster)]
    assert _hosts(names) == {"istiod.istio-system.svc.cluster.local"}
    assert "inbound|8080||" in names


def g_cds(c, proxy):  # type: ignore[no-untyped-def]
    return generator.Generator().generate(resources.TYPE_CDS, proxy, c, None)


def test_sidecar_outbound_traffic_policy_overrides_the_mesh() -> None:
    c = _ctx(_sidecar({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}))
    g = generator.Generator()

    def fallback(proxy) -> str:  # type: ignore[no-untyped-def]
        lds = _decode(g.generate(resources.TYPE_LDS, proxy, c, None), listener_pb2.Listener)
        vout = next(x for x in lds if x.name == naming.VIRTUAL_OUTBOUND)
        return vout.filter_chains[-1].filters[0].typed_config.value.decode(errors="replace")

    assert naming.BLACKHOLE_CLUSTER in fallback(md.proxy(namespace="sample"))
    assert naming.PASSTHROUGH_CLUSTER in fallback(md.proxy(namespace="other", pod="o"))
    # no egress listener: every service stays visible
    cds = _decode(g.generate(resources.TYPE_CDS, md.proxy(namespace="sample"), c, None), cluster_pb2.Cluster)
    assert _hosts([x.name for x in cds]) == ALL
