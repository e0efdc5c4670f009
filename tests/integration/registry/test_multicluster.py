"""Registries and the remote-secret controller against two real dev clusters."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1

from meshplane.kube import client as kube_client
from meshplane.model import ids, mesh
from meshplane.registry import aggregate, cluster, metrics, multicluster
from tests.support import kubeobjects, netaddr
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for

C1, C2 = ids.ClusterId("cluster1"), ids.ClusterId("cluster2")
NS = "istio-system"


def secret(name: str, entries: dict[str, str]) -> core_v1.Secret:
    return core_v1.Secret(
        metadata=ObjectMeta(name=name, namespace=NS, labels={"istio/multiCluster": "true"}),
        data={k: base64.b64encode(v.encode()).decode() for k, v in entries.items()},
    )


class Harness:
    def __init__(self, c1: ThreadedCluster, timeout: float = 30.0) -> None:
        self.changes: list[tuple[bool, frozenset[ids.Hostname], str]] = []
        self.gaps: list[str] = []
        self.watch_host: ids.Hostname | None = None
        self.agg = aggregate.Aggregate(mesh.MeshConfig(), self._changed)
        self.local = lightkube_client(c1.kubeconfig)
        self.mc = multicluster.Multicluster(
            local_id=C1,
            local_client=self.local,
            local_registry=self._registry(C1, self.local),
            namespace=NS,
            aggregate=self.agg,
            client_factory=lambda value, source: kube_client.client_from_untrusted(value, source),
            registry_factory=self._registry,
            metrics=metrics.RegistryMetrics(),
            sync_timeout=timeout,
        )

    def _registry(self, cid: ids.ClusterId, client: Any) -> cluster.ClusterRegistry:
        return cluster.ClusterRegistry(cid, client, on_change=self.agg.on_change, network="network1")

    def _changed(self, full: bool, hosts: frozenset[ids.Hostname], reason: str) -> None:
        self.changes.append((full, hosts, reason))
        if self.watch_host is not None and C2 not in self.agg.shards().get(self.watch_host, {}):
            self.gaps.append(reason)

    def endpoints(self, host: ids.Hostname) -> dict[str, list[str]]:
        return {c: [e.address for e in eps] for c, eps in self.agg.shards().get(host, {}).items()}

    def status(self, cid: str) -> dict[str, str] | None:
        return next((s for s in self.mc.clusterz() if s["id"] == cid), None)


@pytest.fixture
async def harness(clusters: tuple[ThreadedCluster, ThreadedCluster]) -> AsyncIterator[Harness]:
    h = Harness(clusters[0])
    await kubeobjects.ensure_namespace(h.local, NS)
    await h.mc.start()
    yield h
    await h.mc.stop()
    for s in await _list_secrets(h.local):
        await h.local.delete(core_v1.Secret, s, namespace=NS)
    await h.local.close()


async def _list_secrets(client: Any) -> list[str]:
    return [
        s.metadata.name
        async for s in client.list(core_v1.Secret, namespace=NS, labels={"istio/multiCluster": "true"})
    ]


def kubeconfig_text(c: ThreadedCluster, comment: str = "") -> str:
    return (f"# {comment}\n" if comment else "") + yaml.safe_dump(c.kubeconfig)


async def test_remote_secret_lifecycle(
    clusters: tuple[ThreadedCluster, ThreadedCluster], harness: Harness
) -> None:
    c1, c2 = clusters
    ns = unique("sample")
    host = ids.service_hostname("helloworld", ns)
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    await kubeobjects.add_service(w1, ns, "helloworld")
    await kubeobjects.set_slice(w1, ns, "helloworld", [("127.0.1.5", True, False)])
    await kubeobjects.add_service(w2, ns, "helloworld")
    await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.5", True, False)])
    await wait_for(lambda: harness.endpoints(host) == {C1: ["127.0.1.5"]}, what="cluster1 endpoints")
    assert harness.mc.ready()

    # attach cluster2
    await w1.create(secret("istio-remote-secret-cluster2", {"cluster2": kubeconfig_text(c2)}))
    await wait_for(lambda: harness.endpoints(host).get(C2) == ["127.0.2.5"], what="cluster2 endpoints")
    await wait_for(lambda: (harness.status("cluster2") or {}).get("syncStatus") == "synced", what="synced")
    assert harness.status("cluster2") == {
        "id": "cluster2",
        "secretName": f"{NS}/istio-remote-secret-cluster2",
        "syncStatus": "synced",
    }
    # endpoint changes in cluster2 are EDS-only
    harness.changes.clear()
    await kubeobjects.set_slice(
        w2, ns, "helloworld", [("127.0.2.5", True, False), ("127.0.2.6", True, False)]
    )
    await wait_for(
        lambda: harness.endpoints(host).get(C2) == ["127.0.2.5", "127.0.2.6"], what="added endpoint"
    )
    assert any(not full and host in hosts for full, hosts, _ in harness.changes)
    assert not any(full for full, _, _ in harness.changes)

    # rotate the kubeconfig: swapped once synced, endpoints present at every step
    harness.watch_host = host
    old_client = harness.mc.client_for("cluster2")
    await w1.patch(
        core_v1.Secret,
        "istio-remote-secret-cluster2",
        {"data": {"cluster2": base64.b64encode(kubeconfig_text(c2, "rotated").encode()).decode()}},
        namespace=NS,
    )
    await wait_for(lambda: harness.mc.client_for("cluster2") is not old_client, what="swap")
    await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.7", True, False)])
    await wait_for(lambda: harness.endpoints(host).get(C2) == ["127.0.2.7"], what="new registry serves")
    assert harness.gaps == []
    harness.watch_host = None

    # delete the secret: cluster2 gone; re-add: back
    await w1.delete(core_v1.Secret, "istio-remote-secret-cluster2", namespace=NS)
    await wait_for(lambda: C2 not in harness.endpoints(host), what="cluster2 removed")
    assert harness.status("cluster2") is None
    await w1.create(secret("istio-remote-secret-cluster2", {"cluster2": kubeconfig_text(c2)}))
    await wait_for(lambda: harness.endpoints(host).get(C2) == ["127.0.2.7"], what="cluster2 back")
    await w1.close()
    await w2.close()


async def test_bad_entries_are_reported_and_isolated(
    clusters: tuple[ThreadedCluster, ThreadedCluster], harness: Harness
) -> None:
    c1, c2 = clusters
    w1 = lightkube_client(c1.kubeconfig)
    await w1.create(secret("good", {"cluster2": kubeconfig_text(c2)}))
    await wait_for(
        lambda: (harness.status("cluster2") or {}).get("syncStatus") == "synced", what="good synced"
    )
    await w1.create(secret("broken", {"cluster3": "not: [a kubeconfig"}))
    await w1.create(secret("dup", {"cluster2": kubeconfig_text(c2, "dup")}))
    await w1.create(secret("self", {"cluster1": kubeconfig_text(c1)}))

    def problems() -> dict[str, str]:
        return {
            s["secretName"]: s.get("error", "") for s in harness.mc.clusterz() if s["syncStatus"] == "error"
        }

    await wait_for(lambda: len(problems()) == 3, what="three reported problems")
    p = problems()
    assert "not valid YAML" in p[f"{NS}/broken"]
    assert "already been registered by secret istio-system/good" in p[f"{NS}/dup"]
    assert "would overwrite the config cluster" in p[f"{NS}/self"]
    assert harness.status("cluster2") == {
        "id": "cluster2",
        "secretName": f"{NS}/good",
        "syncStatus": "synced",
    }
    # fixing the broken secret clears its problem
    await w1.patch(
        core_v1.Secret,
        "broken",
        {"data": {"cluster3": base64.b64encode(kubeconfig_text(c2).encode()).decode()}},
        namespace=NS,
    )
    await wait_for(lambda: (harness.status("cluster3") or {}).get("syncStatus") == "synced", what="fixed")
    assert f"{NS}/broken" not in problems()
    await w1.close()


async def test_unreachable_remote_times_out_without_blocking_readiness(
    clusters: tuple[ThreadedCluster, ThreadedCluster],
) -> None:
    c1, c2 = clusters
    h = Harness(c1, timeout=1.0)
    await kubeobjects.ensure_namespace(h.local, NS)
    await h.mc.start()
    try:
        dead_port = netaddr.free_port()
        cfg = c2.kubeconfig
        cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{dead_port}"
        await h.local.create(secret("unreachable", {"cluster9": yaml.safe_dump(cfg)}))
        await wait_for(
            lambda: (h.status("cluster9") or {}).get("syncStatus") == "timeout", timeout=15, what="timeout"
        )
        assert h.mc.ready()
    finally:
        await h.mc.stop()
        await h.local.delete(core_v1.Secret, "unreachable", namespace=NS)
        await h.local.close()
