"""Registries and the remote-secret controller against two real dev clusters."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import lightkube
import pytest
import yaml
from lightkube.models import rbac_v1 as rbac_m
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1
from lightkube.resources import rbac_authorization_v1 as rbac_v1

from meshplane.cli import remote_clusters
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


# --- real credential rotation (issue 14, defect 3) ---------------------------------------------

READER = "istio-reader-service-account"


async def _reader_token(w2: Any, secret_name: str) -> str:
    """A long-lived token of cluster2's reader service account, as create-remote-secret makes it:
    a kubernetes.io/service-account-token Secret the token controller fills."""
    await kubeobjects.ensure_namespace(w2, NS)
    for obj in (
        core_v1.ServiceAccount(metadata=ObjectMeta(name=READER, namespace=NS)),
        rbac_v1.ClusterRole(
            metadata=ObjectMeta(name="test-remote-reader"),
            rules=[rbac_m.PolicyRule(apiGroups=["*"], resources=["*"], verbs=["get", "list", "watch"])],
        ),
        rbac_v1.ClusterRoleBinding(
            metadata=ObjectMeta(name="test-remote-reader"),
            roleRef=rbac_m.RoleRef(
                apiGroup="rbac.authorization.k8s.io", kind="ClusterRole", name="test-remote-reader"
            ),
            subjects=[rbac_m.Subject(kind="ServiceAccount", name=READER, namespace=NS)],
        ),
    ):
        with contextlib.suppress(lightkube.ApiError):  # made by an earlier test of the module
            await w2.create(obj)
    await w2.create(
        core_v1.Secret(
            metadata=ObjectMeta(
                name=secret_name, namespace=NS, annotations={"kubernetes.io/service-account.name": READER}
            ),
            type="kubernetes.io/service-account-token",
        )
    )

    async def filled() -> str:
        s = await w2.get(core_v1.Secret, secret_name, namespace=NS)
        return base64.b64decode((s.data or {}).get("token", "")).decode()

    return await wait_for(filled, what=f"token controller fills {secret_name}")


def token_kubeconfig(c: ThreadedCluster, token: str) -> str:
    cfg = c.kubeconfig
    cfg["users"][0]["user"] = {"token": token}
    return yaml.safe_dump(cfg)


async def _answers(c: ThreadedCluster, token: str) -> int:
    """The status cluster2 answers a request made with `token` (200 or the refusal's code)."""
    client = lightkube_client(yaml.safe_load(token_kubeconfig(c, token)))
    try:
        await client.get(core_v1.Namespace, NS)
        return 200
    except lightkube.ApiError as e:
        return int(e.status.code or 0)
    finally:
        await client.close()


class GapWatch:
    """Polls the aggregate every few ms while a swap runs: any moment without cluster2's endpoints."""

    def __init__(self, harness: Harness, host: ids.Hostname) -> None:
        self.gaps = 0
        self.polls = 0
        self._task = asyncio.create_task(self._poll(harness, host))

    async def _poll(self, harness: Harness, host: ids.Hostname) -> None:
        while True:
            self.polls += 1
            if not harness.endpoints(host).get(C2):
                self.gaps += 1
            await asyncio.sleep(0.005)  # a polling interval, not a wait for a condition

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _unauthorized_logged(records: list[logging.LogRecord]) -> list[str]:
    return [
        r.getMessage() for r in records if "cluster=cluster2" in r.getMessage() and "401" in r.getMessage()
    ]


async def test_token_rotation_swaps_clients_without_a_gap_and_drops_the_old_token(
    clusters: tuple[ThreadedCluster, ThreadedCluster], harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    c1, c2 = clusters
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    ns = unique("rot")
    host = ids.service_hostname("helloworld", ns)
    await kubeobjects.add_service(w2, ns, "helloworld")
    await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.5", True, False)])
    token_a = await _reader_token(w2, "reader-token-a")
    await w1.create(secret("istio-remote-secret-cluster2", {"cluster2": token_kubeconfig(c2, token_a)}))
    await wait_for(lambda: harness.endpoints(host).get(C2) == ["127.0.2.5"], what="cluster2 via token A")
    old_client, old_registry = harness.mc.client_for("cluster2"), harness.mc.registry_of("cluster2")
    assert old_registry is not None
    old_informers = old_registry._group.tasks  # the watches that use token A
    assert len(old_informers) == len(old_registry.informers)

    # rotate: token B in the remote secret, token A revoked (its Secret deleted) at once
    token_b = await _reader_token(w2, "reader-token-b")
    caplog.set_level(logging.INFO, logger="meshplane")
    gaps = GapWatch(harness, host)
    await w1.patch(
        core_v1.Secret,
        "istio-remote-secret-cluster2",
        {"data": {"cluster2": base64.b64encode(token_kubeconfig(c2, token_b).encode()).decode()}},
        namespace=NS,
    )
    await w2.delete(core_v1.Secret, "reader-token-a", namespace=NS)
    await wait_for(lambda: harness.mc.client_for("cluster2") is not old_client, what="swapped to token B")
    swapped_at = len(caplog.records)
    assert await _answers(c2, token_a) == 401, "cluster2 must reject the revoked token"
    # the new client serves: a change in cluster2 arrives through it
    await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.6", True, False)])
    await wait_for(lambda: harness.endpoints(host).get(C2) == ["127.0.2.6"], what="served via token B")
    await gaps.stop()
    assert gaps.polls > 10 and gaps.gaps == 0, f"{gaps.gaps} of {gaps.polls} polls found no endpoints"
    # nothing uses token A any more: the old registry's informers are gone, no 401 since the swap
    assert all(t.done() for t in old_informers)
    assert _unauthorized_logged(caplog.records[swapped_at:]) == []
    assert (harness.status("cluster2") or {}).get("syncStatus") == "synced"
    await w2.delete(core_v1.Secret, "reader-token-b", namespace=NS)
    await w1.close()
    await w2.close()


async def test_replacement_with_refused_credentials_times_out_reports_error_and_keeps_the_old_client(
    clusters: tuple[ThreadedCluster, ThreadedCluster],
) -> None:
    c1, c2 = clusters
    h = Harness(c1, timeout=1.5)
    await kubeobjects.ensure_namespace(h.local, NS)
    await h.mc.start()
    w2 = lightkube_client(c2.kubeconfig)
    ns = unique("stall")
    host = ids.service_hostname("helloworld", ns)
    try:
        await kubeobjects.add_service(w2, ns, "helloworld")
        await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.5", True, False)])
        good = await _reader_token(w2, "reader-token-good")
        await h.local.create(secret("istio-remote-secret-cluster2", {"cluster2": token_kubeconfig(c2, good)}))
        await wait_for(lambda: h.endpoints(host).get(C2) == ["127.0.2.5"], what="cluster2 synced")
        old_client = h.mc.client_for("cluster2")

        # a replacement whose token cluster2 refuses (revoked before it is used)
        revoked = await _reader_token(w2, "reader-token-revoked")
        await w2.delete(core_v1.Secret, "reader-token-revoked", namespace=NS)
        assert await _answers(c2, revoked) == 401
        await h.local.patch(
            core_v1.Secret,
            "istio-remote-secret-cluster2",
            {"data": {"cluster2": base64.b64encode(token_kubeconfig(c2, revoked).encode()).decode()}},
            namespace=NS,
        )

        def error() -> str:
            return next((s.get("error", "") for s in h.mc.clusterz() if s["syncStatus"] == "error"), "")

        await wait_for(error, 15, what="the stalled replacement reported")
        assert "not synced after 1.5s" in error() and "401" in error()
        assert "still serving from the previous one" in error()
        assert revoked not in error()
        # `meshplane remote-clusters` shows it (the rows and table it prints from /debug/clusterz)
        text = remote_clusters.table(remote_clusters.rows({"istiod-1": h.mc.clusterz()}, "default"))
        assert "error" in text and "401" in text
        # the old client keeps serving cluster2
        assert h.mc.client_for("cluster2") is old_client
        await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.8", True, False)])
        await wait_for(
            lambda: h.endpoints(host).get(C2) == ["127.0.2.8"], what="still served by the old client"
        )

        # a good replacement arrives: swapped, the error is gone
        fixed = await _reader_token(w2, "reader-token-fixed")
        await h.local.patch(
            core_v1.Secret,
            "istio-remote-secret-cluster2",
            {"data": {"cluster2": base64.b64encode(token_kubeconfig(c2, fixed).encode()).decode()}},
            namespace=NS,
        )
        await wait_for(
            lambda: h.mc.client_for("cluster2") is not old_client, what="swapped to the good token"
        )
        assert error() == ""
        assert (h.status("cluster2") or {}).get("syncStatus") == "synced"
    finally:
        await h.mc.stop()
        for name in ("reader-token-good", "reader-token-fixed"):
            with contextlib.suppress(lightkube.ApiError):
                await w2.delete(core_v1.Secret, name, namespace=NS)
        await h.local.delete(core_v1.Secret, "istio-remote-secret-cluster2", namespace=NS)
        await h.local.close()
        await w2.close()
