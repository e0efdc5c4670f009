from __future__ import annotations

from typing import Any

import pytest
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from meshplane.model import endpoint
from meshplane.xds import cache, errors, generator, naming, resources
from tests.support import meshdata as md

HELLO = md.svc(vips={"cluster1": ["10.96.0.10"]})
OTHER = md.svc("other", "apps")
EPS = md.shards(
    md.ep("127.0.1.5", "cluster1", tls=True, sa="hw"), md.ep("127.0.2.5", "cluster2", tls=True, sa="hw")
)


def _ctx(version: str = "v1", eps=EPS):  # type: ignore[no-untyped-def]
    return md.ctx(
        [HELLO, OTHER], {HELLO.hostname: eps, OTHER.hostname: md.shards(md.ep("127.0.1.9"))}, version=version
    )


def test_proxies_with_the_same_view_share_the_same_objects() -> None:
    g = generator.Generator()
    c = _ctx()
    a, b = md.proxy("127.0.1.10"), md.proxy("127.0.1.11", pod="other-client")
    names = frozenset({"outbound|5000||helloworld.sample.svc.cluster.local"})
    ea, eb = (g.generate(resources.TYPE_EDS, p, c, names) for p in (a, b))
    assert ea is eb
    ca, cb = (g.generate(resources.TYPE_CDS, p, c, None) for p in (a, b))
    shared = {r.name: r for r in ca.resources}
    for r in cb.resources:
        assert r is shared[r.name]  # same Resource, same Any bytes
    ra, rb = (g.generate(resources.TYPE_RDS, p, c, frozenset({"5000"})) for p in (a, b))
    assert ra.resources[0] is rb.resources[0]


def test_each_resource_is_built_once_per_push() -> None:
    g = generator.Generator()
    c = _ctx()
    for i in range(20):
        p = md.proxy(f"127.0.1.{50 + i}", pod=f"p{i}")
        for t in resources.PUSH_ORDER:
            g.generate(t, p, c, None)
    # 2 outbound clusters + Passthrough/BlackHole/InboundPassthrough + 2 EDS + virtualOutbound,
    # 0.0.0.0_5000 and virtualInbound (no own port) + route config "5000", nothing per proxy
    assert g.cache.stats.built == 11


def test_views_that_differ_get_different_config() -> None:
    g = generator.Generator()
    c = _ctx()
    in_sample = g.generate(resources.TYPE_RDS, md.proxy(namespace="sample"), c, None)
    in_apps = g.generate(resources.TYPE_RDS, md.proxy(namespace="apps"), c, None)
    assert in_sample.resources[0].version != in_apps.resources[0].version  # short names differ
    # a sidecar that is an endpoint of helloworld gets an inbound cluster and listener
    server = md.proxy("127.0.1.5", pod="helloworld-v1")
    assert "inbound|5000||" in g.generate(resources.TYPE_CDS, server, c, None).names
    lds = g.generate(resources.TYPE_LDS, server, c, None).by_name()
    assert (
        lds["virtualInbound"]
        is not g.generate(resources.TYPE_LDS, md.proxy(), c, None).by_name()["virtualInbound"]
    )
    explicit = md.proxy("127.0.1.5", pod="helloworld-v1", metadata={"INTERCEPTION_MODE": "NONE"})
    assert "127.0.1.5_5000" in g.generate(resources.TYPE_LDS, explicit, c, None).names
    assert "inbound|5000||" not in g.generate(resources.TYPE_CDS, md.proxy(), c, None).names
    # no SDS: clusters without TLS
    no_sds = g.generate(resources.TYPE_CDS, md.proxy(metadata={"MESHPLANE_SDS": "false"}), c, None)
    with_sds = g.generate(resources.TYPE_CDS, md.proxy(), c, None)
    hello = "outbound|5000||helloworld.sample.svc.cluster.local"
    assert no_sds.by_name()[hello].version != with_sds.by_name()[hello].version


def test_unchanged_resources_keep_their_version_across_pushes() -> None:
    g = generator.Generator()
    p = md.proxy()
    v1 = {t: g.generate(t, p, _ctx("v1"), None) for t in resources.PUSH_ORDER}
    built = g.cache.stats.built
    # an endpoint change of helloworld in cluster2 (same service accounts): only that EDS changes
    changed = md.shards(
        md.ep("127.0.1.5", "cluster1", tls=True, sa="hw"),
        md.ep("127.0.2.5", "cluster2", tls=True, sa="hw", health=endpoint.Health.DRAINING),
    )
    v2 = {t: g.generate(t, p, _ctx("v2", changed), None) for t in resources.PUSH_ORDER}
    for t in (resources.TYPE_CDS, resources.TYPE_LDS, resources.TYPE_RDS):
        assert [(r.name, r.version) for r in v1[t].resources] == [
            (r.name, r.version) for r in v2[t].resources
        ]
        assert v1[t].version == v2[t].version
    before, after = v1[resources.TYPE_EDS].by_name(), v2[resources.TYPE_EDS].by_name()
    hello = "outbound|5000||helloworld.sample.svc.cluster.local"
    assert before[hello].version != after[hello].version
    assert (
        before["outbound|5000||other.apps.svc.cluster.local"]
        is after["outbound|5000||other.apps.svc.cluster.local"]
    )
    # only helloworld's EDS was rebuilt: its cluster depends on endpoints only through their identities
    assert g.cache.stats.built - built == 1
    cla = endpoint_pb2.ClusterLoadAssignment()
    assert after[hello].body.Unpack(cla)
    assert len(cla.endpoints[0].lb_endpoints) == 2


def test_eds_only_the_requested_names_that_exist() -> None:
    g = generator.Generator()
    names = frozenset(
        {"outbound|5000||helloworld.sample.svc.cluster.local", "outbound|1||nope.x.svc.cluster.local", "junk"}
    )
    got = g.generate(resources.TYPE_EDS, md.proxy(), _ctx(), names)
    assert got.names == {"outbound|5000||helloworld.sample.svc.cluster.local"}


def test_wildcard_types_can_be_filtered_by_name() -> None:
    g = generator.Generator()
    got = g.generate(
        resources.TYPE_CDS, md.proxy(), _ctx(), frozenset({"outbound|5000||other.apps.svc.cluster.local"})
    )
    assert got.names == {"outbound|5000||other.apps.svc.cluster.local"}


def test_unsupported_type() -> None:
    with pytest.raises(errors.UnsupportedTypeError, match="Secret"):
        generator.Generator().generate(resources.TYPE_SDS, md.proxy(), _ctx(), None)


def test_cache_keeps_a_few_generations() -> None:
    c = cache.ResourceCache(generations=2)
    for v in ("a", "b", "c"):
        c.derived(v, "k", lambda: 1)
    assert c.versions() == ("b", "c")


def test_generated_version_changes_with_names() -> None:
    r = resources.pack("x", endpoint_pb2.ClusterLoadAssignment(cluster_name="x"))
    r2 = resources.pack("y", endpoint_pb2.ClusterLoadAssignment(cluster_name="x"))
    assert r.version == r2.version  # same bytes
    assert (
        resources.generated(resources.TYPE_EDS, [r]).version
        != resources.generated(resources.TYPE_EDS, [r2]).version
    )
    assert resources.generated(resources.TYPE_EDS, []).resources == ()


def test_new_service_account_changes_the_cluster() -> None:
    g = generator.Generator()
    p = md.proxy()
    hello = "outbound|5000||helloworld.sample.svc.cluster.local"
    before = g.generate(resources.TYPE_CDS, p, _ctx("v1"), None).by_name()[hello]
    more = md.shards(*EPS[next(iter(EPS))], md.ep("127.0.2.6", "cluster2", tls=True, sa="new-sa"))
    after = g.generate(resources.TYPE_CDS, p, _ctx("v2", more), None).by_name()[hello]
    assert before.version != after.version


def test_reuse_survives_many_eds_only_pushes() -> None:
    g = generator.Generator()
    p = md.proxy()
    g.generate(resources.TYPE_CDS, p, _ctx("v1"), None)
    hello = frozenset({"outbound|5000||helloworld.sample.svc.cluster.local"})
    for i in range(2, 12):  # ten EDS-only pushes touch one resource each
        g.generate(resources.TYPE_EDS, p, _ctx(f"v{i}"), hello)
    built = g.cache.stats.built
    g.generate(resources.TYPE_CDS, p, _ctx("v12"), None)  # a full push: nothing changed for CDS
    assert g.cache.stats.built == built


def test_cross_version_map_is_bounded() -> None:
    c = cache.ResourceCache(max_resources=2)
    for i in range(4):
        msg = endpoint_pb2.ClusterLoadAssignment(cluster_name=f"c{i}")
        c.resource("v1", ("eds", i), (), lambda m=msg: (m.cluster_name, m))  # type: ignore[misc]
    assert c.stats.evicted == 2


_label = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
_ports = st.lists(
    st.tuples(
        st.sampled_from(["http", "http-alt", "grpc", "tcp", "http2-x", ""]), st.sampled_from([80, 5000, 9000])
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def _mesh(draw: st.DrawFn) -> tuple[Any, list[Any]]:
    services = []
    shards: dict[Any, Any] = {}
    for _ in range(draw(st.integers(1, 6))):
        name, ns = draw(_label), draw(st.sampled_from(["sample", "apps"]))
        s = md.svc(
            name, ns, draw(_ports), vips={"cluster1": [draw(st.sampled_from(["10.96.0.1", "10.96.0.2"]))]}
        )
        services.append(s)
        eps = [
            md.ep(
                draw(st.sampled_from(["127.0.1.5", "127.0.1.6", "127.0.2.5"])),
                draw(st.sampled_from(["cluster1", "cluster2"])),
                {p.name: draw(st.sampled_from([p.port, 8080])) for p in s.ports},
                tls=draw(st.booleans()),
                sa=draw(st.sampled_from(["", "a", "b"])),
                network=draw(st.sampled_from(["", "network1", "network2"])),
            )
            for _ in range(draw(st.integers(0, 3)))
        ]
        shards[s.hostname] = md.shards(*eps)
    return md.ctx(services, shards), services


@settings(max_examples=60, deadline=None)
@given(
    _mesh(),
    st.sampled_from(["127.0.1.5", "127.0.1.9"]),
    st.sampled_from(["127.0.0.1", "bogus", "127.0.101.5"]),
    st.lists(st.text(max_size=30), max_size=3),
)
def test_any_mesh_gives_unique_names_and_domains(
    world: tuple[Any, list[Any]], ip: str, localhost: str, junk_names: list[str]
) -> None:
    c, _ = world
    g = generator.Generator()
    for mode in ("NONE", "REDIRECT"):
        meta = {"MESHPLANE_LOCALHOST": localhost, "INTERCEPTION_MODE": mode}
        p = md.proxy(ip, metadata=meta, network_view=("network1",))
        for t in resources.PUSH_ORDER:
            out = g.generate(t, p, c, None)
            names = [r.name for r in out.resources]
            assert len(names) == len(set(names)), (t, names)
        eds = g.generate(resources.TYPE_EDS, p, c, frozenset(junk_names))
        assert all(naming.outbound_host(r.name) for r in eds.resources)
        for rc in g.generate(resources.TYPE_RDS, p, c, None).resources:
            routes = route_pb2.RouteConfiguration()
            assert rc.body.Unpack(routes)
            domains = [d for vh in routes.virtual_hosts for d in vh.domains]
            assert len(domains) == len(set(domains))


def test_inbound_signature_changes_when_the_proxy_joins_a_service() -> None:
    g = generator.Generator()
    server = md.proxy("127.0.1.5", pod="helloworld-v1")
    before = g.inbound_signature(server, _ctx("v1"))
    health_only = md.shards(
        md.ep("127.0.1.5", "cluster1", tls=True, sa="hw", health=endpoint.Health.UNHEALTHY),
        md.ep("127.0.2.5", "cluster2", tls=True, sa="hw"),
    )
    assert g.inbound_signature(server, _ctx("v2", health_only)) == before
    gone = md.shards(md.ep("127.0.2.5", "cluster2", tls=True, sa="hw"))
    assert g.inbound_signature(server, _ctx("v3", gone)) != before
    assert g.inbound_signature(server, _ctx("v3", gone)) == ()
