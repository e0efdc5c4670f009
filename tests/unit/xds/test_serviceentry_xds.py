"""A sidecar's config for ServiceEntry hosts: STATIC → EDS cluster with the entry's endpoints,
DNS → STRICT_DNS cluster over the endpoints' host names (or the hosts), NONE → ORIGINAL_DST;
MESH_EXTERNAL endpoints never get mTLS; the host gets a virtual host on its port, so under
REGISTRY_ONLY it is routed instead of refused; Envoy accepts the whole config."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from meshplane.agent import ndsproto
from meshplane.model import mesh
from meshplane.networking import config as networking_config
from meshplane.xds import generator, naming, resources
from tests.support import envoyproc
from tests.support import meshdata as md
from tests.unit.xds.test_envoy_validate import _bootstrap, _decode, _route_holder

HTTP = [{"number": 8000, "name": "http", "protocol": "HTTP"}]
ENTRIES: list[dict[str, Any]] = [
    {
        "hosts": ["static.example.com"],
        "ports": HTTP,
        "resolution": "STATIC",
        "endpoints": [{"address": "127.0.5.1", "ports": {"http": 9000}}, {"address": "127.0.5.2"}],
    },
    {
        "hosts": ["dns.example.com"],
        "ports": HTTP,
        "resolution": "DNS",
        "endpoints": [{"address": "backend.example.net"}],
    },
    {
        "hosts": ["bare.example.com"],
        "ports": [*HTTP, {"number": 443, "name": "tls", "protocol": "TLS"}],
        "resolution": "DNS",
    },
    {"hosts": ["*.none.example.com"], "ports": HTTP, "resolution": "NONE"},
    {
        "hosts": ["internal.example.com"],
        "ports": HTTP,
        "resolution": "STATIC",
        "location": "MESH_INTERNAL",
        "endpoints": [{"address": "127.0.5.9"}],
    },
]


def _ctx(
    policy: mesh.OutboundTrafficPolicy = mesh.OutboundTrafficPolicy.ALLOW_ANY, with_entries: bool = True
):  # type: ignore[no-untyped-def]
    docs = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": f"se{i}", "namespace": "sample"},
            "spec": spec,
        }
        for i, spec in enumerate(ENTRIES if with_entries else [])
    ]
    cfg, problems = networking_config.build(docs)
    assert problems == []
    hello = md.svc(vips={"cluster1": ["10.96.0.10"]})
    svcs, shards = cfg.with_entries({hello.hostname: hello}, {hello.hostname: md.shards(md.ep("127.0.1.5"))})
    c = md.ctx(svcs.values(), shards, networking=cfg)
    return dataclasses.replace(c, mesh=dataclasses.replace(c.mesh, outbound_traffic_policy=policy))


def _clusters(c, proxy) -> dict[str, cluster_pb2.Cluster]:  # type: ignore[no-untyped-def]
    g = generator.Generator()
    return {x.name: x for x in _decode(g.generate(resources.TYPE_CDS, proxy, c, None), cluster_pb2.Cluster)}


def test_cluster_type_follows_the_resolution() -> None:
    cs = _clusters(_ctx(), md.proxy())
    static = cs["outbound|8000||static.example.com"]
    assert static.type == cluster_pb2.Cluster.EDS
    dns = cs["outbound|8000||dns.example.com"]
    assert dns.type == cluster_pb2.Cluster.STRICT_DNS
    assert [
        (e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value)
        for loc in dns.load_assignment.endpoints
        for e in loc.lb_endpoints
    ] == [("backend.example.net", 8000)]
    bare = cs["outbound|443||bare.example.com"]
    assert bare.type == cluster_pb2.Cluster.STRICT_DNS
    (ep,) = (e for loc in bare.load_assignment.endpoints for e in loc.lb_endpoints)
    assert ep.endpoint.address.socket_address.address == "bare.example.com"
    none = cs["outbound|8000||*.none.example.com"]
    assert none.type == cluster_pb2.Cluster.ORIGINAL_DST
    assert none.lb_policy == cluster_pb2.Cluster.CLUSTER_PROVIDED
    # MESH_EXTERNAL: no mTLS transport socket at all; MESH_INTERNAL keeps auto mTLS
    for name in ("outbound|8000||static.example.com", "outbound|8000||dns.example.com"):
        assert not cs[name].transport_socket_matches and not cs[name].HasField("transport_socket")
    assert cs["outbound|8000||internal.example.com"].transport_socket_matches


def test_static_endpoints_are_sent_by_eds_without_tls_mode_when_external() -> None:
    g = generator.Generator()
    eds = {
        x.cluster_name: x
        for x in _decode(
            g.generate(resources.TYPE_EDS, md.proxy(), _ctx(), None), endpoint_pb2.ClusterLoadAssignment
        )
    }
    assert "outbound|8000||dns.example.com" not in eds  # STRICT_DNS: no EDS
    assert "outbound|8000||*.none.example.com" not in eds
    static = eds["outbound|8000||static.example.com"]
    got = [
        (e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value, e.metadata)
        for loc in static.endpoints
        for e in loc.lb_endpoints
    ]
    assert [(a, p) for a, p, _ in got] == [("127.0.5.1", 9000), ("127.0.5.2", 8000)]
    assert all("envoy.transport_socket_match" not in md_.filter_metadata for _, _, md_ in got)
    internal = eds["outbound|8000||internal.example.com"]
    (ep,) = (e for loc in internal.endpoints for e in loc.lb_endpoints)
    assert (
        ep.metadata.filter_metadata["envoy.transport_socket_match"].fields["tlsMode"].string_value == "istio"
    )


def _port_8000(c) -> route_pb2.RouteConfiguration:  # type: ignore[no-untyped-def]
    g = generator.Generator()
    p = md.proxy(metadata={"INTERCEPTION_MODE": "REDIRECT"})
    routes = _decode(g.generate(resources.TYPE_RDS, p, c, None), route_pb2.RouteConfiguration)
    return next(r for r in routes if r.name == "8000")


def test_registry_only_routes_entry_hosts_and_blocks_the_rest() -> None:
    c = _ctx(mesh.OutboundTrafficPolicy.REGISTRY_ONLY)
    table = _port_8000(c)
    by_domain = {d: vh for vh in table.virtual_hosts for d in vh.domains}
    assert by_domain["dns.example.com:8000"].routes[0].route.cluster == "outbound|8000||dns.example.com"
    # no Kubernetes short names for a ServiceEntry host
    assert not any(d.startswith("dns.example.com.sample") for d in by_domain)
    assert by_domain["*"].name == "block_all"
    # without the entries port 8000 has no listener: the catch-all sends it to BlackHoleCluster
    g = generator.Generator()
    p = md.proxy(metadata={"INTERCEPTION_MODE": "REDIRECT"})
    bare = _ctx(mesh.OutboundTrafficPolicy.REGISTRY_ONLY, with_entries=False)
    lds = _decode(g.generate(resources.TYPE_LDS, p, bare, None), listener_pb2.Listener)
    assert "0.0.0.0_8000" not in {x.name for x in lds}
    vout = next(x for x in lds if x.name == naming.VIRTUAL_OUTBOUND)
    assert naming.BLACKHOLE_CLUSTER in vout.filter_chains[-1].filters[0].typed_config.value.decode(
        errors="replace"
    )


@pytest.mark.envoy
@pytest.mark.parametrize("policy", list(mesh.OutboundTrafficPolicy))
def test_config_with_service_entries_is_accepted_by_envoy(policy: mesh.OutboundTrafficPolicy) -> None:
    g = generator.Generator()
    c = _ctx(policy)
    p = md.proxy("127.0.1.5", metadata={"INTERCEPTION_MODE": "REDIRECT"})
    clusters = _decode(g.generate(resources.TYPE_CDS, p, c, None), cluster_pb2.Cluster)
    listeners = _decode(g.generate(resources.TYPE_LDS, p, c, None), listener_pb2.Listener)
    routes = _decode(g.generate(resources.TYPE_RDS, p, c, None), route_pb2.RouteConfiguration)
    assert naming.outbound_cluster("dns.example.com", 8000) in {x.name for x in clusters}
    doc = _bootstrap(clusters, listeners + [_route_holder(rc, i) for i, rc in enumerate(routes)])
    result = envoyproc.validate(doc)
    assert result.returncode == 0, result.stdout + result.stderr


def test_name_table_has_no_entry_for_service_entry_hosts_without_addresses() -> None:
    g = generator.Generator()
    got = g.generate(resources.TYPE_NDS, md.proxy(), _ctx(), None)
    table = ndsproto.NameTable()
    assert got.resources[0].body.Unpack(table)
    # the registry's service keeps its entry; the entries' hosts (no addresses) get none
    assert list(table.table) == ["helloworld.sample.svc.cluster.local"]


def test_dns_subset_cluster_keeps_the_endpoints_with_the_subset_labels() -> None:
    se = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "versions", "namespace": "sample"},
        "spec": {
            "hosts": ["v.example.com"],
            "ports": HTTP,
            "resolution": "DNS",
            "endpoints": [
                {"address": "one.example.net", "labels": {"version": "v1"}},
                {"address": "two.example.net", "labels": {"version": "v2"}},
            ],
        },
    }
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "versions", "namespace": "sample"},
        "spec": {"host": "v.example.com", "subsets": [{"name": "v2", "labels": {"version": "v2"}}]},
    }
    cfg, problems = networking_config.build([se, rule])
    assert problems == []
    svcs, shards = cfg.with_entries({}, {})
    cs = _clusters(md.ctx(svcs.values(), shards, networking=cfg), md.proxy())

    def addresses(name: str) -> list[str]:
        return [
            e.endpoint.address.socket_address.address
            for loc in cs[name].load_assignment.endpoints
            for e in loc.lb_endpoints
        ]

    assert addresses("outbound|8000||v.example.com") == ["one.example.net", "two.example.net"]
    assert addresses("outbound|8000|v2|v.example.com") == ["two.example.net"]
