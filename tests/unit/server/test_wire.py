from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2

from meshplane.server import wire
from meshplane.xds import resources as R


def cluster(name: str, timeout: int = 1) -> R.Resource:
    c = cluster_pb2.Cluster(name=name)
    c.connect_timeout.seconds = timeout
    return R.pack(name, c)


def test_sotw_bytes_are_the_response_protobuf_would_build() -> None:
    enc = wire.Encoder()
    items = [cluster("a"), cluster("b", 2)]
    data = wire.sotw_response(enc, R.TYPE_CDS, "v1", "n1", items)
    parsed = discovery_pb2.DiscoveryResponse.FromString(data)
    expected = discovery_pb2.DiscoveryResponse(
        version_info="v1", type_url=R.TYPE_CDS, nonce="n1", resources=[r.body for r in items]
    )
    assert parsed == expected


def test_delta_bytes_carry_names_versions_and_removals() -> None:
    enc = wire.Encoder()
    items = [cluster("a")]
    data = wire.delta_response(enc, R.TYPE_CDS, "v1", "n1", items, ["z", "y"])
    parsed = discovery_pb2.DeltaDiscoveryResponse.FromString(data)
    assert parsed.system_version_info == "v1" and parsed.nonce == "n1"
    assert list(parsed.removed_resources) == ["y", "z"]
    (r,) = parsed.resources
    assert (r.name, r.version, r.resource) == ("a", items[0].version, items[0].body)


def test_each_resource_is_serialized_once_across_streams_and_old_ones_are_dropped() -> None:
    enc = wire.Encoder()
    items = [cluster("a"), cluster("b")]
    enc.begin("push-1")
    for nonce in ("n1", "n2", "n3"):  # three streams
        wire.sotw_response(enc, R.TYPE_CDS, "push-1", nonce, items)
    assert enc.encoded == 2
    enc.begin("push-2")
    wire.sotw_response(enc, R.TYPE_CDS, "push-2", "n4", [items[0]])
    assert enc.encoded == 2  # unchanged resource: same bytes reused
    enc.begin("push-3")  # b unused during push-2 and push-3: dropped; a kept from push-2
    assert len(enc) == 1
    enc.begin("push-4")
    assert len(enc) == 0


def test_a_shared_resource_tuple_is_joined_once_and_a_list_every_time() -> None:
    enc = wire.Encoder()
    items = (cluster("a"), cluster("b"))
    enc.begin("push-1")
    first = enc.body(items, delta=False)
    assert enc.body(items, delta=False) is first
    assert enc.body(list(items), delta=False) == first
    assert enc.body(list(items), delta=False) is not first
    assert enc.body(items, delta=True) != first  # Delta wraps each in a Resource
