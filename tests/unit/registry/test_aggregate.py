from dataclasses import dataclass, field

from meshplane.model import endpoint as ep
from meshplane.model import ids, mesh
from meshplane.model import service as svc
from meshplane.registry import aggregate, cluster

H = ids.Hostname("helloworld.sample.svc.cluster.local")
ISTIOD = ids.Hostname("istiod.istio-system.svc.cluster.local")
C1, C2 = ids.ClusterId("cluster1"), ids.ClusterId("cluster2")


@dataclass
class View:
    cluster_id: ids.ClusterId
    services: dict[ids.Hostname, svc.Service] = field(default_factory=dict)
    endpoints: dict[ids.Hostname, tuple[ep.Endpoint, ...]] = field(default_factory=dict)


def service(host: ids.Hostname, cid: ids.ClusterId, port: int = 5000) -> svc.Service:
    name, ns = host.split(".")[:2]
    return svc.Service(
        hostname=host,
        name=name,
        namespace=ns,
        ports=(svc.ServicePort("http", port, svc.Protocol.HTTP),),
        cluster_vips={cid: (f"10.0.0.{port % 250}",)},
    )


def endpoint(addr: str, cid: ids.ClusterId) -> ep.Endpoint:
    return ep.Endpoint(address=addr, ports={"http": 5000}, cluster_id=cid)


@dataclass
class Push:
    full: bool
    eds_hosts: frozenset[ids.Hostname]
    reason: str


def recorder(pushes: list[Push]) -> aggregate.ChangeFn:
    return lambda full, hosts, reason: pushes.append(Push(full, hosts, reason))


class Snap:
    def __init__(self, agg: aggregate.Aggregate) -> None:
        self.services = agg.services()
        self.endpoints = agg.shards()


def setup() -> tuple[aggregate.Aggregate, list[Push], View, View]:
    pushes: list[Push] = []
    agg = aggregate.Aggregate(mesh.MeshConfig(), recorder(pushes))
    v1 = View(C1, {H: service(H, C1)}, {H: (endpoint("127.0.1.5", C1),)})
    v2 = View(C2, {H: service(H, C2, 6000)}, {H: (endpoint("127.0.2.5", C2),)})
    agg.add(v1)  # type: ignore[arg-type]
    agg.add(v2)  # type: ignore[arg-type]
    return agg, pushes, v1, v2


def test_merges_across_clusters_first_wins_and_shards_per_cluster() -> None:
    agg, _, _, _ = setup()
    ctx = Snap(agg)
    assert ctx.services[H].ports[0].port == 5000
    assert set(ctx.services[H].cluster_vips) == {C1, C2}
    assert {c: [e.address for e in eps] for c, eps in ctx.endpoints[H].items()} == {
        C1: ["127.0.1.5"],
        C2: ["127.0.2.5"],
    }


def test_endpoint_change_is_eds_only_and_service_change_is_full() -> None:
    agg, pushes, _, v2 = setup()
    pushes.clear()
    v2.endpoints[H] = (endpoint("127.0.2.5", C2), endpoint("127.0.2.6", C2))
    agg.on_change(v2, cluster.Change(endpoints={H}))  # type: ignore[arg-type]
    assert len(pushes) == 1 and not pushes[0].full and pushes[0].eds_hosts == {H}
    v2.services[H] = service(H, C2, 6001)
    agg.on_change(v2, cluster.Change(services={H}))  # type: ignore[arg-type]
    assert pushes[-1].full


def test_unchanged_endpoints_do_not_push() -> None:
    agg, pushes, _, v2 = setup()
    pushes.clear()
    agg.on_change(v2, cluster.Change(endpoints={H}))  # type: ignore[arg-type]
    assert pushes == []


def test_snapshot_is_not_changed_by_later_updates() -> None:
    agg, _, _, v2 = setup()
    before = Snap(agg)
    v2.endpoints[H] = ()
    agg.on_change(v2, cluster.Change(endpoints={H}))  # type: ignore[arg-type]
    assert C2 in before.endpoints[H]
    assert C2 not in Snap(agg).endpoints[H]


def test_swap_replaces_in_place_and_stale_registry_is_ignored() -> None:
    agg, pushes, _, v2 = setup()
    replacement = View(C2, dict(v2.services), {H: (endpoint("127.0.2.9", C2),)})
    agg.add(replacement)  # type: ignore[arg-type]
    assert [e.address for e in Snap(agg).endpoints[H][C2]] == ["127.0.2.9"]
    assert agg.clusters == [C1, C2]
    pushes.clear()
    v2.endpoints[H] = ()
    agg.on_change(v2, cluster.Change(endpoints={H}))  # type: ignore[arg-type]  # the old one: ignored
    assert pushes == []
    agg.remove(C2, v2)  # type: ignore[arg-type]  # not the registered one: no-op
    assert C2 in agg.clusters


def test_remove_cluster_drops_its_shards_with_a_full_push() -> None:
    agg, pushes, _, _v2 = setup()
    pushes.clear()
    agg.remove(C2)
    ctx = Snap(agg)
    assert set(ctx.endpoints[H]) == {C1}
    assert set(ctx.services[H].cluster_vips) == {C1}
    assert pushes[-1].full and H in pushes[-1].eds_hosts


def test_cluster_local_hosts_are_flagged() -> None:
    pushes: list[Push] = []
    agg = aggregate.Aggregate(mesh.MeshConfig(), recorder(pushes))
    agg.add(View(C1, {ISTIOD: service(ISTIOD, C1), H: service(H, C1)}))  # type: ignore[arg-type]
    ctx = Snap(agg)
    assert ctx.services[ISTIOD].cluster_local and not ctx.services[H].cluster_local
    agg.set_mesh(mesh.MeshConfig(cluster_local_hosts=("*.sample.svc.cluster.local",)))
    ctx = Snap(agg)
    assert ctx.services[H].cluster_local and not ctx.services[ISTIOD].cluster_local
    assert pushes[-1].full


def test_new_service_account_behind_a_host_forces_a_full_push() -> None:
    agg, pushes, _, v2 = setup()
    pushes.clear()
    v2.endpoints[H] = (
        ep.Endpoint(address="127.0.2.5", ports={"http": 5000}, cluster_id=C2, service_account="new-sa"),
    )
    agg.on_change(v2, cluster.Change(endpoints={H}))  # type: ignore[arg-type]
    assert pushes[-1].full
