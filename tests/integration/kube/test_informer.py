"""The informer against a real dev cluster: events, cache while down, relist on 410, resync repair."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1

from meshplane.devcluster.api import context
from meshplane.kube import client as kube_client
from meshplane.kube import informer as inf
from meshplane.kube import leader
from meshplane.runtime import tasks
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for


@pytest.fixture(scope="module")
def cluster_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return {
        "name": "informer",
        "data_dir": tmp_path_factory.mktemp("informer-data"),
        "settings": context.Settings(name="informer", history_size=50),
    }


@pytest.fixture
async def ns(cluster: ThreadedCluster) -> str:
    name = unique("inf")
    client = lightkube_client(cluster.kubeconfig)
    await client.create(core_v1.Namespace(metadata=ObjectMeta(name=name)))
    await client.close()
    return name


def cm(name: str, ns: str, value: str = "1") -> core_v1.ConfigMap:
    return core_v1.ConfigMap(metadata=ObjectMeta(name=name, namespace=ns), data={"v": value})


async def test_list_watch_events_and_cache(cluster: ThreadedCluster, ns: str) -> None:
    client = lightkube_client(cluster.kubeconfig)
    await client.create(cm("before", ns))
    seen: list[tuple[str, str]] = []
    informer: inf.Informer[Any] = inf.Informer(client, core_v1.ConfigMap, cluster_id="c", namespace=ns)
    # the dev cluster's root-CA publisher adds kube-root-ca.crt to every namespace: not ours
    informer.add_handler(
        lambda e: (
            e.obj.metadata.name != "kube-root-ca.crt" and seen.append((e.type.value, e.obj.metadata.name))
        )
    )
    task = tasks.guarded(informer.run(), "informer")
    try:
        await asyncio.wait_for(informer.wait_synced(), 10)
        assert informer.get("before", ns) is not None and informer.connected
        await client.create(cm("after", ns))
        await client.patch(core_v1.ConfigMap, "before", {"data": {"v": "2"}}, namespace=ns)
        await client.delete(core_v1.ConfigMap, "after", namespace=ns)
        await wait_for(lambda: ("DELETED", "after") in seen, what="delete event")
        assert seen[:4] == [
            ("ADDED", "before"),
            ("ADDED", "after"),
            ("MODIFIED", "before"),
            ("DELETED", "after"),
        ]
        obj = informer.get("before", ns)
        assert obj is not None and obj.data == {"v": "2"}
        assert informer.get("after", ns) is None
    finally:
        await tasks.cancel(task)
        await client.close()


async def test_serves_cache_while_down_and_resyncs(cluster: ThreadedCluster, ns: str) -> None:
    client = lightkube_client(cluster.kubeconfig)
    await client.create(cm("kept", ns))
    informer: inf.Informer[Any] = inf.Informer(client, core_v1.ConfigMap, cluster_id="c", namespace=ns)
    task = tasks.guarded(informer.run(), "informer")
    try:
        await asyncio.wait_for(informer.wait_synced(), 10)
        await asyncio.to_thread(cluster.stop)
        await wait_for(lambda: not informer.connected, timeout=15, what="informer notices the outage")
        assert informer.get("kept", ns) is not None  # still served from cache
        await asyncio.to_thread(cluster.call, cluster.cluster.start)
        writer = lightkube_client(cluster.kubeconfig)
        await writer.create(cm("while-back", ns))
        await writer.close()
        await wait_for(
            lambda: informer.get("while-back", ns) is not None, timeout=20, what="resync after restart"
        )
        assert informer.connected
    finally:
        await tasks.cancel(task)
        await client.close()


async def test_expired_resource_version_relists(cluster: ThreadedCluster, ns: str) -> None:
    client = lightkube_client(cluster.kubeconfig)
    informer: inf.Informer[Any] = inf.Informer(client, core_v1.ConfigMap, cluster_id="c", namespace=ns)
    task = tasks.guarded(informer.run(), "informer")
    await asyncio.wait_for(informer.wait_synced(), 10)
    relists = informer.relists
    await tasks.cancel(task)
    # while the informer is away, more changes than the server's history (50) happen
    for i in range(60):
        await client.create(cm(f"c{i}", ns))
    await client.delete(core_v1.ConfigMap, "c0", namespace=ns)
    task = tasks.guarded(informer.run(), "informer")  # resumes from its old RV: 410, then relist
    try:
        await wait_for(
            lambda: informer.relists > relists and informer.get("c59", ns) is not None, what="relist"
        )
        assert informer.get("c0", ns) is None
        assert len([o for o in informer.items() if o.metadata.name.startswith("c")]) == 59
    finally:
        await tasks.cancel(task)
        await client.close()


async def test_periodic_resync_repairs_a_missed_event(cluster: ThreadedCluster, ns: str) -> None:
    client = lightkube_client(cluster.kubeconfig)
    await client.create(cm("x", ns))
    informer: inf.Informer[Any] = inf.Informer(
        client, core_v1.ConfigMap, cluster_id="c", namespace=ns, resync_period=0.5
    )
    events: list[str] = []
    informer.add_handler(lambda e: events.append(f"{e.type.value}/{e.obj.metadata.name}"))
    task = tasks.guarded(informer.run(), "informer")
    try:
        await asyncio.wait_for(informer.wait_synced(), 10)
        # simulate a watch event that never arrived: the cache lost "x"
        informer._cache.pop((ns, "x"))
        events.clear()
        await wait_for(lambda: informer.get("x", ns) is not None, timeout=10, what="resync repair")
        assert "MODIFIED/x" in events or "ADDED/x" in events
    finally:
        await tasks.cancel(task)
        await client.close()


async def test_missing_kind_is_synced_empty(cluster: ThreadedCluster) -> None:
    from lightkube.generic_resource import create_namespaced_resource

    gateway = create_namespaced_resource("networking.istio.io", "v1", "Gateway", "gateways")
    client = lightkube_client(cluster.kubeconfig)
    informer: inf.Informer[Any] = inf.Informer(client, gateway, cluster_id="c", missing_ok=True)
    task = tasks.guarded(informer.run(), "informer")
    try:
        await asyncio.wait_for(informer.wait_synced(), 10)
        assert informer.items() == []
    finally:
        await tasks.cancel(task)
        await client.close()


async def test_client_factory_reads_the_dev_cluster_kubeconfig(
    cluster: ThreadedCluster, tmp_path: Any
) -> None:
    path = cluster.write_kubeconfig(tmp_path / "kc")
    cfg = kube_client.load_config(str(path), "informer")
    client = await asyncio.to_thread(kube_client.make_client, cfg)
    try:
        names = [n.metadata.name async for n in client.list(core_v1.Namespace)]
        assert "kube-system" in names
    finally:
        await client.close()


async def test_leader_election_one_leader_and_handover(cluster: ThreadedCluster, ns: str) -> None:
    timing = leader.Timing(lease_duration=2.0, renew_deadline=1.0, retry_period=0.25)
    leading: dict[str, bool] = {}

    def make(identity: str) -> leader.LeaderElection:
        async def work() -> None:
            leading[identity] = True
            try:
                await asyncio.Event().wait()
            finally:
                leading[identity] = False

        client = lightkube_client(cluster.kubeconfig)
        return leader.LeaderElection(
            client,
            namespace=ns,
            name="istio-namespace-controller-election",
            identity=identity,
            key="^default",
            on_start=work,
            timing=timing,
            cluster_id="c2",
        )

    a, b = make("istiod-a"), make("istiod-b")
    ta, tb = tasks.guarded(a.run(), "a"), tasks.guarded(b.run(), "b")
    try:
        await wait_for(lambda: a.leading or b.leading, what="a leader")
        await asyncio.sleep(0)
        first, second, t_first = (a, b, ta) if a.leading else (b, a, tb)
        assert not second.leading
        reader = lightkube_client(cluster.kubeconfig)
        lock = await reader.get(core_v1.ConfigMap, "istio-namespace-controller-election", namespace=ns)
        record = leader.Record.parse(lock.metadata.annotations[leader.ANNOTATION])
        assert (
            record is not None
            and record.holder_identity == first.identity
            and record.holder_key == "^default"
        )
        assert record.lease_duration_seconds == 2
        # the leader dies without releasing (like kill -9): the other takes over within the lease
        t_first.cancel()
        first._release = lambda: asyncio.sleep(0)  # type: ignore[method-assign]
        await asyncio.gather(t_first, return_exceptions=True)
        await wait_for(lambda: second.leading, timeout=2.0 + 1.5, what="handover within the lease")
        await reader.close()
    finally:
        await tasks.cancel(ta)
        await tasks.cancel(tb)
