"""The multicluster (remote secret) controller, after Istio's pkg/kube/multicluster.

Secrets labelled `istio/multiCluster=true` in the control plane's namespace of the config cluster
map cluster IDs to kubeconfigs. Each key becomes a ClusterRegistry in the aggregate. A changed
kubeconfig builds a replacement that is swapped in only once synced, so the cluster's endpoints
never vanish; a removed key or secret removes the cluster. A bad entry is reported (logs, status,
metric) and affects nothing else.

A replacement that does not sync within the sync timeout (e.g. its token is refused) is reported
as an `error` entry of /debug/clusterz with the reason (the informers' last error), while the
previous client keeps serving; it keeps retrying, and a later secret value replaces it. Once a
replacement is swapped in, the previous client's informers are stopped and its connections closed,
so a revoked old credential is never used again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import lightkube
from lightkube.resources import core_v1

from meshplane.kube import errors as kube_errors
from meshplane.kube import informer as inf
from meshplane.model import ids
from meshplane.registry import aggregate as agg
from meshplane.registry import cluster as cluster_mod
from meshplane.registry import metrics as metrics_mod
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import tasks
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

MULTICLUSTER_LABEL = "istio/multiCluster"


class SyncStatus(StrEnum):
    SYNCING = "syncing"
    SYNCED = "synced"
    TIMEOUT = "timeout"
    CLOSED = "closed"
    ERROR = "error"  # meshplane: the entry could not be used (bad kubeconfig, duplicate id, ...)


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """What per-cluster controllers get: the id, a client, and whether it is the config cluster."""

    cluster_id: ids.ClusterId
    client: lightkube.AsyncClient
    local: bool
    secret_name: str = ""


class ClusterHandler(Protocol):
    """Per-cluster controllers (leader election, namespace controller, webhook patcher) plug in here."""

    async def cluster_added(self, cluster: ClusterInfo) -> None: ...
    async def cluster_removed(self, cluster_id: ids.ClusterId) -> None: ...


ClientFactory = Callable[[bytes, str], Awaitable[lightkube.AsyncClient]]
RegistryFactory = Callable[[ids.ClusterId, lightkube.AsyncClient], cluster_mod.ClusterRegistry]


@dataclass
class _Remote:
    cluster_id: ids.ClusterId
    secret: str  # namespace/name
    sha: str
    client: lightkube.AsyncClient
    registry: cluster_mod.ClusterRegistry
    status: SyncStatus = SyncStatus.SYNCING
    watchdog: asyncio.Task[Any] | None = None
    pending: _Remote | None = None  # a replacement waiting to sync


@dataclass
class _Problem:
    cluster_id: str
    secret: str
    reason: str


@dataclass
class Multicluster:
    local_id: ids.ClusterId
    local_client: lightkube.AsyncClient
    local_registry: cluster_mod.ClusterRegistry
    namespace: str
    aggregate: agg.Aggregate
    client_factory: ClientFactory
    registry_factory: RegistryFactory
    metrics: metrics_mod.RegistryMetrics
    sync_timeout: float = 30.0
    resync_period: float = 300.0
    clock: clock_mod.Clock = field(default_factory=clock_mod.SystemClock)
    handlers: list[ClusterHandler] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._remotes: dict[ids.ClusterId, _Remote] = {}
        self._problems: dict[tuple[str, str], _Problem] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._group = tasks.TaskGroup("multicluster")
        self.secret_informer: inf.Informer[Any] = inf.Informer(
            self.local_client,
            core_v1.Secret,
            cluster_id=self.local_id,
            namespace=self.namespace,
            labels={MULTICLUSTER_LABEL: "true"},
            resync_period=self.resync_period,
            clock=self.clock,
        )
        self.secret_informer.add_handler(self._secret_event)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.aggregate.add(self.local_registry)
        self.local_registry.start()
        self.metrics.managed_clusters.labels("local").set(1)
        self._group.start(self._worker(), "worker")
        self._group.start(self.secret_informer.run(), "secrets")
        info = ClusterInfo(self.local_id, self.local_client, local=True)
        for handler in self.handlers:
            await handler.cluster_added(info)

    async def stop(self) -> None:
        await self._group.stop()
        for cid in list(self._remotes):
            await self._delete(cid, reason="shutdown")
        for handler in self.handlers:
            await handler.cluster_removed(self.local_id)
        await self.local_registry.stop()

    def ready(self) -> bool:
        """Istio's readiness: the config cluster synced, each remote synced or timed out."""
        if not self.local_registry.synced or not self.secret_informer.synced:
            return False
        return all(r.status != SyncStatus.SYNCING for r in self._remotes.values())

    def client_for(self, cluster_id: str) -> lightkube.AsyncClient | None:
        if cluster_id == self.local_id:
            return self.local_client
        remote = self._remotes.get(ids.ClusterId(cluster_id))
        return remote.client if remote else None

    def registry_of(self, cluster_id: str) -> cluster_mod.ClusterRegistry | None:
        if cluster_id == self.local_id:
            return self.local_registry
        remote = self._remotes.get(ids.ClusterId(cluster_id))
        return remote.registry if remote else None

    def remote_ids(self) -> list[ids.ClusterId]:
        return list(self._remotes)

    def clusterz(self) -> list[dict[str, str]]:
        """`/debug/clusterz` as Istio's ({id, secretName, syncStatus}, config cluster first), plus errors."""
        out = [{"id": self.local_id, "secretName": "", "syncStatus": self._local_status()}]
        for r in self._remotes.values():
            entry = {"id": r.cluster_id, "secretName": r.secret, "syncStatus": r.status.value}
            if r.status is SyncStatus.TIMEOUT and (reason := _informer_error(r.registry)):
                entry["error"] = reason
            out.append(entry)
        for p in self._problems.values():
            out.append({"id": p.cluster_id, "secretName": p.secret, "syncStatus": "error", "error": p.reason})
        return out

    def _local_status(self) -> str:
        return SyncStatus.SYNCED.value if self.local_registry.synced else SyncStatus.SYNCING.value

    # --- secret events ---------------------------------------------------------------------------

    def _secret_event(self, event: inf.Event[Any]) -> None:
        self.metrics.secret_events.labels(event.type.value.lower()).inc()
        meta = event.obj.metadata
        self._queue.put_nowait(f"{meta.namespace}/{meta.name}")

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            try:
                await self._process(key)
            except Exception:
                log.exception("processing remote secret failed %s", kv(secret=key))

    async def _process(self, secret_key: str) -> None:
        namespace, name = secret_key.split("/", 1)
        secret = self.secret_informer.get(name, namespace)
        wanted = _kubeconfigs(secret) if secret is not None else {}
        for stale in [k for k in self._problems if k[0] == secret_key and k[1] not in wanted]:
            del self._problems[stale]
        for cid, remote in list(self._remotes.items()):
            if remote.secret == secret_key and cid not in wanted:
                await self._delete(cid, reason=f"key removed from secret {secret_key}")
        for raw_id, value in wanted.items():
            await self._apply(secret_key, ids.ClusterId(raw_id), value)

    def _problem(self, secret_key: str, cid: str, reason: str, metric: str) -> None:
        log.warning("remote cluster not added %s", kv(cluster=cid, secret=secret_key, reason=reason))
        self._problems[(secret_key, cid)] = _Problem(cid, secret_key, reason)
        self.metrics.remote_errors.labels(metric).inc()

    async def _apply(self, secret_key: str, cid: ids.ClusterId, value: bytes | None) -> None:
        if value is None:
            return self._problem(secret_key, cid, "value is not valid base64", "bad_kubeconfig")
        if cid == self.local_id:
            return self._problem(secret_key, cid, "would overwrite the config cluster; ignored", "local_id")
        existing = self._remotes.get(cid)
        if existing is not None and existing.secret != secret_key:
            return self._problem(
                secret_key,
                cid,
                f"cluster has already been registered by secret {existing.secret}",
                "duplicate",
            )
        sha = hashlib.sha256(value).hexdigest()
        if existing is not None and (existing.pending or existing).sha == sha:
            # unchanged (e.g. a resync): a stalled replacement's problem stays reported
            log.info("skipping update (kubeconfig are identical) %s", kv(cluster=cid, secret=secret_key))
            return None
        self._problems.pop((secret_key, cid), None)
        try:
            client = await self.client_factory(value, f"secret {secret_key} key {cid}")
        except kube_errors.KubeconfigError as e:
            return self._problem(secret_key, cid, f"create remote cluster failed: {e}", "bad_kubeconfig")
        registry = self.registry_factory(cid, client)
        remote = _Remote(cid, secret_key, sha, client, registry)
        registry.start()
        if existing is None:
            log.info("adding remote cluster %s", kv(cluster=cid, secret=secret_key))
            self._remotes[cid] = remote
            self.aggregate.add(registry)
            self._set_status(remote, SyncStatus.SYNCING)
            remote.watchdog = self._group.start(self._watch_sync(remote), f"sync/{cid}")
            self.metrics.managed_clusters.labels("remote").set(len(self._remotes))
            await self._notify_added(remote)
        else:
            log.info("updating remote cluster, swapping once synced %s", kv(cluster=cid, secret=secret_key))
            if existing.pending is not None:
                await self._discard(existing.pending)
            existing.pending = remote
            remote.watchdog = self._group.start(self._swap_when_synced(existing, remote), f"swap/{cid}")
        return None

    async def _watch_sync(self, remote: _Remote) -> None:
        try:
            async with asyncio.timeout(self.sync_timeout if self.sync_timeout > 0 else None):
                await remote.registry.wait_synced()
        except TimeoutError:
            log.warning(
                "remote cluster failed to sync %s",
                kv(cluster=remote.cluster_id, secret=remote.secret, timeout=f"{self.sync_timeout:g}s"),
            )
            self.metrics.sync_timeouts.labels(remote.cluster_id).inc()
            self._set_status(remote, SyncStatus.TIMEOUT)
            await remote.registry.wait_synced()  # informers keep retrying
        self._set_status(remote, SyncStatus.SYNCED)
        log.info("remote cluster synced %s", kv(cluster=remote.cluster_id, secret=remote.secret))

    async def _swap_when_synced(self, current: _Remote, new: _Remote) -> None:
        try:
            async with asyncio.timeout(self.sync_timeout if self.sync_timeout > 0 else None):
                await new.registry.wait_synced()
        except TimeoutError:
            cause = _informer_error(new.registry) or "informers not synced"
            reason = (
                f"replacement kubeconfig not synced after {self.sync_timeout:g}s ({cause}); "
                "still serving from the previous one"
            )
            log.warning(
                "remote cluster replacement failed to sync, keeping the previous client %s",
                kv(cluster=new.cluster_id, secret=new.secret, reason=cause),
            )
            self._problems[(new.secret, new.cluster_id)] = _Problem(new.cluster_id, new.secret, reason)
            self.metrics.remote_errors.labels("replacement_timeout").inc()
            self.metrics.sync_timeouts.labels(new.cluster_id).inc()
            await new.registry.wait_synced()  # informers keep retrying; a newer value cancels this
        if current.pending is not new or self._remotes.get(current.cluster_id) is not current:
            return
        self._problems.pop((new.secret, new.cluster_id), None)
        log.info(
            "remote cluster replacement synced, swapping %s", kv(cluster=new.cluster_id, secret=new.secret)
        )
        self._remotes[new.cluster_id] = new
        self.aggregate.add(new.registry)  # replaces shards in place: no moment without endpoints
        self._set_status(new, SyncStatus.SYNCED)
        current.pending = None
        await self._notify_removed(current.cluster_id)
        await self._discard(current, keep_watchdog=True)
        await self._notify_added(new)

    async def _delete(self, cid: ids.ClusterId, reason: str) -> None:
        remote = self._remotes.pop(cid, None)
        if remote is None:
            return
        log.info("removing remote cluster %s", kv(cluster=cid, secret=remote.secret, reason=reason))
        self.aggregate.remove(cid, remote.registry)
        await self._notify_removed(cid)
        if remote.pending is not None:
            await self._discard(remote.pending)
        await self._discard(remote)
        self._set_status(remote, SyncStatus.CLOSED)
        self.metrics.managed_clusters.labels("remote").set(len(self._remotes))

    async def _discard(self, remote: _Remote, keep_watchdog: bool = False) -> None:
        if not keep_watchdog:
            await tasks.cancel(remote.watchdog)
        await remote.registry.stop()
        try:
            await remote.client.close()
        except Exception as e:  # closing a dead connection must not stop the controller
            log.debug("closing client failed %s", kv(cluster=remote.cluster_id, error=repr(e)))

    def _set_status(self, remote: _Remote, status: SyncStatus) -> None:
        remote.status = status
        for s in SyncStatus:
            if s is SyncStatus.ERROR:
                continue
            value = 1.0 if s is status else 0.0
            self.metrics.remote_sync_status.labels(remote.cluster_id, "remote", s.value).set(value)

    async def _notify_added(self, remote: _Remote) -> None:
        info = ClusterInfo(remote.cluster_id, remote.client, local=False, secret_name=remote.secret)
        for handler in self.handlers:
            try:
                await handler.cluster_added(info)
            except Exception:
                log.exception("cluster handler failed %s", kv(cluster=remote.cluster_id))

    async def _notify_removed(self, cid: ids.ClusterId) -> None:
        for handler in self.handlers:
            try:
                await handler.cluster_removed(cid)
            except Exception:
                log.exception("cluster handler failed %s", kv(cluster=cid))


def _informer_error(registry: cluster_mod.ClusterRegistry) -> str:
    """The first informer error of a registry ("" when none): why it has not synced."""
    return next((i.last_error for i in registry.informers if i.last_error), "")


def _kubeconfigs(secret: Any) -> dict[str, bytes | None]:
    """Data keys of a remote secret → kubeconfig bytes (None when a value is not base64)."""
    out: dict[str, bytes | None] = {}
    for key, value in (secret.data or {}).items():
        try:
            out[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            out[key] = None
    return out
