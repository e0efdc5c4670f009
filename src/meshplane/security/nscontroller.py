"""The namespace controller: ConfigMap `istio-ca-root-cert` in every namespace of a led cluster.

As Istio's (pilot/pkg/serviceregistry/kube/controller/namespacecontroller.go): key `root-cert.pem`
holds the mesh CA bundle, label `istio.io/config: "true"`, every namespace except kube-public,
kube-node-lease and local-path-storage. A deleted or edited ConfigMap is put back at once (watch
events), and a CA change rewrites them all. It runs per cluster the control plane leads; the
composition root starts it when leader election says so and stops it when it does not.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import lightkube
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace

from meshplane.kube import errors as kube_errors
from meshplane.kube import informer as inf
from meshplane.model.ids import ClusterId
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import tasks
from meshplane.runtime.logging import kv
from meshplane.security import workqueue

log = logging.getLogger(__name__)

CONFIGMAP_NAME = "istio-ca-root-cert"
CONFIGMAP_KEY = "root-cert.pem"
CONFIG_LABEL = "istio.io/config"
EXCLUDED_NAMESPACES = frozenset({"kube-public", "kube-node-lease", "local-path-storage"})


def desired_data(ca_bundle: str) -> dict[str, str]:
    return {CONFIGMAP_KEY: ca_bundle}


def needs_update(cm: Any, ca_bundle: str) -> bool:
    """True when the ConfigMap's data or label differs from what the controller writes."""
    labels = (cm.metadata.labels or {}) if cm.metadata else {}
    return (
        dict(cm.data or {}) != desired_data(ca_bundle)
        or bool(cm.binaryData)
        or labels.get(CONFIG_LABEL) != "true"
    )


def _retry_delay(failures: int) -> float:
    # 100 ms doubling, at most 10 s (client-go's default controller rate limiter, roughly).
    return float(min(0.1 * 2 ** (failures - 1), 10.0))


class NamespaceController:
    def __init__(
        self,
        client: lightkube.AsyncClient,
        cluster_id: ClusterId,
        ca_bundle: str,
        *,
        excluded_namespaces: frozenset[str] = EXCLUDED_NAMESPACES,
        resync_period: float = 300.0,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self._client = client
        self.cluster_id = cluster_id
        self._bundle = ca_bundle
        self._excluded = excluded_namespaces
        self._clock = clock or clock_mod.SystemClock()
        common: dict[str, Any] = {"cluster_id": cluster_id, "resync_period": resync_period, "clock": clock}
        # namespace="" (not None): Namespace is cluster-scoped, the informer's None means "all namespaces"
        self._namespaces: inf.Informer[Any] = inf.Informer(client, Namespace, namespace="", **common)
        self._configmaps: inf.Informer[Any] = inf.Informer(
            client, ConfigMap, fields={"metadata.name": CONFIGMAP_NAME}, **common
        )
        self._namespaces.add_handler(self._on_namespace)
        self._configmaps.add_handler(self._on_configmap)
        self._queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(_retry_delay, self._clock)
        self._group = tasks.TaskGroup(f"nscontroller/{cluster_id}")
        self._run_task: asyncio.Task[Any] | None = None
        self.writes = 0  # ConfigMaps created or rewritten (for /debug and tests)

    @property
    def ca_bundle(self) -> str:
        return self._bundle

    def set_ca_bundle(self, ca_bundle: str) -> None:
        """The CA changed: rewrite every namespace's ConfigMap."""
        if ca_bundle == self._bundle:
            return
        self._bundle = ca_bundle
        log.info("CA bundle changed, updating root cert ConfigMaps %s", kv(cluster=self.cluster_id))
        self._enqueue_all()

    async def run(self) -> None:
        """Watch namespaces and the ConfigMaps until stop() (or cancellation)."""
        self._run_task = asyncio.current_task()
        try:
            self._group.start(self._namespaces.run(), "namespaces")
            self._group.start(self._configmaps.run(), "configmaps")
            self._group.on_stop(self._queue.close)
            await self._namespaces.wait_synced()
            await self._configmaps.wait_synced()
            log.info("namespace controller synced %s", kv(cluster=self.cluster_id))
            self._enqueue_all()
            while True:
                await self._process(await self._queue.get())
        finally:
            await self._group.stop()

    async def _process(self, ns: str) -> None:
        try:
            await self._reconcile(ns)
        except Exception as e:
            delay = self._queue.retry(ns)
            log.warning(
                "cannot write root cert ConfigMap, retrying %s",
                kv(
                    cluster=self.cluster_id,
                    namespace=ns,
                    retry_in=f"{delay:.1f}s",
                    error=kube_errors.describe(e),
                ),
            )
        else:
            self._queue.forget(ns)

    async def stop(self) -> None:
        """Stop watching and writing (leadership lost or cluster removed)."""
        task, self._run_task = self._run_task, None
        if task is not None and task is not asyncio.current_task():
            await tasks.cancel(task)
        await self._group.stop()

    def _enqueue_all(self) -> None:
        for ns in self._namespaces.items():
            self._queue.add(ns.metadata.name)

    def _on_namespace(self, event: inf.Event[Any]) -> None:
        if event.type != inf.EventType.DELETED:
            self._queue.add(event.obj.metadata.name)

    def _on_configmap(self, event: inf.Event[Any]) -> None:
        self._queue.add(event.obj.metadata.namespace)

    async def _reconcile(self, ns_name: str) -> None:
        if ns_name in self._excluded:
            return
        ns = self._namespaces.get(ns_name)
        if ns is None or ns.metadata.deletionTimestamp or (ns.status and ns.status.phase == "Terminating"):
            return
        bundle = self._bundle
        cm = self._configmaps.get(CONFIGMAP_NAME, ns_name)
        if cm is None:
            try:
                await self._client.create(
                    ConfigMap(
                        metadata=ObjectMeta(
                            name=CONFIGMAP_NAME, namespace=ns_name, labels={CONFIG_LABEL: "true"}
                        ),
                        data=desired_data(bundle),
                    )
                )
            except lightkube.ApiError as e:
                if kube_errors.is_conflict(e):  # the cache is behind; the event that follows requeues it
                    await self._update(ns_name, bundle)
                    return
                if kube_errors.status_code(e) in (403, 404) and self._namespaces.get(ns_name) is None:
                    return  # the namespace went away meanwhile
                raise
            self.writes += 1
            log.info("created root cert ConfigMap %s", kv(cluster=self.cluster_id, namespace=ns_name))
            return
        if needs_update(cm, bundle):
            await self._update(ns_name, bundle)

    async def _update(self, ns_name: str, bundle: str) -> None:
        """Read the live object and replace its data (optimistic concurrency on resourceVersion)."""
        live = await self._client.get(ConfigMap, CONFIGMAP_NAME, namespace=ns_name)
        if not needs_update(live, bundle):
            return
        labels = dict(live.metadata.labels or {})
        labels[CONFIG_LABEL] = "true"
        live.metadata.labels = labels
        live.data = desired_data(bundle)
        live.binaryData = None
        await self._client.replace(live)
        self.writes += 1
        log.info("restored root cert ConfigMap %s", kv(cluster=self.cluster_id, namespace=ns_name))
