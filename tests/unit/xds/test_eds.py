from __future__ import annotations

from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf import json_format

from meshplane.model import endpoint, mesh
from meshplane.model.ids import ClusterId
from meshplane.xds import eds
from tests.support import meshdata as md

NAME = "outbound|5000||helloworld.sample.svc.cluster.local"


def _cla(shards, view=eds.View(None, ()), svc=None) -> endpoint_pb2.ClusterLoadAssignment:  # type: ignore[no-untyped-def]
    s = svc or md.svc()
    return eds.load_assignment(NAME, shards, s.ports[0], view)


def _addresses(cla: endpoint_pb2.ClusterLoadAssignment) -> list[str]:
    return [
        f"{lb.endpoint.address.socket_address.address}:{lb.endpoint.address.socket_address.port_value}"
        for loc in cla.endpoints
        for lb in loc.lb_endpoints
    ]


def test_every_cluster_in_shard_key_order() -> None:
    sh = md.shards(
        md.ep("10.2.0.1", "cluster2"), md.ep("10.1.0.1", "cluster1"), md.ep("10.1.0.2", "cluster1")
    )
    cla = _cla(sh)
    assert cla.cluster_name == NAME
    assert _addresses(cla) == ["10.1.0.1:5000", "10.1.0.2:5000", "10.2.0.1:5000"]


def test_endpoint_uses_its_own_target_port_and_drops_those_without_the_port() -> None:
    sh = md.shards(md.ep("10.1.0.1", ports={"http": 8080}), md.ep("10.1.0.2", ports={"metrics": 9090}))
    assert _addresses(_cla(sh)) == ["10.1.0.1:8080"]


def test_cluster_local_host_keeps_only_the_proxys_cluster() -> None:
    istiod = md.svc("istiod", "istio-system", (("grpc-xds", 15012),))
    sh = md.shards(
        md.ep("10.1.0.9", "cluster1", {"grpc-xds": 15012}), md.ep("10.2.0.9", "cluster2", {"grpc-xds": 15012})
    )
    m = mesh.MeshConfig()
    v1 = eds.view(istiod, m, ClusterId("cluster1"), ())
    v2 = eds.view(istiod, m, ClusterId("cluster2"), ())
    assert v1 != v2
    assert _addresses(eds.load_assignment("x", sh, istiod.ports[0], v1)) == ["10.1.0.9:15012"]
    assert _addresses(eds.load_assignment("x", sh, istiod.ports[0], v2)) == ["10.2.0.9:15012"]
    # a global host: the view does not depend on the proxy's cluster
    hello = md.svc()
    assert eds.view(hello, m, ClusterId("cluster1"), ()) == eds.view(hello, m, ClusterId("cluster2"), ())


def test_requested_network_view_keeps_listed_and_unlabelled_networks() -> None:
    sh = md.shards(
        md.ep("10.1.0.1", network="network1"),
        md.ep("10.1.0.2", network="network2"),
        md.ep("10.1.0.3", network=""),
    )
    view = eds.view(md.svc(), mesh.MeshConfig(), ClusterId("cluster1"), ["network1"])
    assert _addresses(_cla(sh, view)) == ["10.1.0.1:5000", "10.1.0.3:5000"]
    everything = eds.view(md.svc(), mesh.MeshConfig(), ClusterId("cluster1"), [])
    assert len(_addresses(_cla(sh, everything))) == 3


def test_health_is_sent_not_filtered() -> None:
    sh = md.shards(
        md.ep("10.1.0.1", health=endpoint.Health.HEALTHY),
        md.ep("10.1.0.2", health=endpoint.Health.UNHEALTHY),
        md.ep("10.1.0.3", health=endpoint.Health.DRAINING),
    )
    statuses = [lb.health_status for loc in _cla(sh).endpoints for lb in loc.lb_endpoints]
    assert statuses == [health_check_pb2.HEALTHY, health_check_pb2.UNHEALTHY, health_check_pb2.DRAINING]


def test_grouped_by_locality() -> None:
    east = endpoint.Locality("us-east", "a")
    west = endpoint.Locality("us-west", "b", "rack1")
    sh = md.shards(
        md.ep("10.1.0.1", locality=east), md.ep("10.1.0.2", locality=west), md.ep("10.1.0.3", locality=east)
    )
    cla = _cla(sh)
    got = [
        (
            (loc.locality.region, loc.locality.zone, loc.locality.sub_zone),
            len(loc.lb_endpoints),
            loc.load_balancing_weight.value,
        )
        for loc in cla.endpoints
    ]
    assert got == [(("us-east", "a", ""), 2, 2), (("us-west", "b", "rack1"), 1, 1)]


def test_metadata_tls_mode_and_workload() -> None:
    sh = md.shards(
        md.ep(
            "10.1.0.1",
            tls=True,
            workload="helloworld-v1-abc",
            labels={"app": "helloworld", "version": "v1"},
        ),
        md.ep("10.1.0.2", workload="plain"),
    )
    first, second = _cla(sh).endpoints[0].lb_endpoints
    meta = json_format.MessageToDict(first.metadata)["filterMetadata"]
    assert meta["envoy.transport_socket_match"] == {"tlsMode": "istio"}
    assert meta["istio"] == {"workload": "helloworld-v1-abc;sample;helloworld;v1;cluster1"}
    meta2 = json_format.MessageToDict(second.metadata)["filterMetadata"]
    assert "envoy.transport_socket_match" not in meta2
    assert meta2["istio"] == {"workload": "plain;sample;plain;latest;cluster1"}


def test_no_endpoints_is_an_empty_assignment() -> None:
    cla = _cla(None)
    assert cla.cluster_name == NAME and not cla.endpoints
