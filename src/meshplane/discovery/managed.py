"""Controllers that run in every cluster this control plane manages (SPEC.md §4).

The config cluster is always managed. With EXTERNAL_ISTIOD, a remote cluster is managed when its
istio-system namespace carries `topology.istio.io/controlPlaneClusters` naming this control
plane's cluster ID (or `*`). In a managed cluster the webhook patcher runs (no election: each
revision patches its own webhook) and the namespace controller runs under the leader lock
`istio-namespace-controller-election` in that cluster's namespace.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx2
import lightkube
from lightkube.core import exceptions as lk_exceptions
from lightkube.resources import core_v1

from meshplane.kube import errors as kube_errors
from meshplane.kube import leader
from meshplane.model import ids
from meshplane.registry import multicluster
from meshplane.runtime import backoff as backoff_mod
from meshplane.runtime import tasks
from meshplane.runtime.logging import kv
from meshplane.security import nscontroller, webhookpatch

log = logging.getLogger(__name__)

ANNOTATION_CONTROL_PLANE_CLUSTERS = "topology.istio.io/controlPlaneClusters"
ELECTION_LOCK = "istio-namespace-controller-election"


def should_lead_annotation(annotations: dict[str, str] | None, cluster_id: str) -> bool:
    raw = (annotations or {}).get(ANNOTATION_CONTROL_PLANE_CLUSTERS, "")
    names = {x.strip() for x in raw.split(",") if x.strip()}
    return cluster_id in names or "*" in names


async def check_should_lead(
    client: lightkube.AsyncClient, namespace: str, cluster_id: str, remote: str
) -> bool:
    """Istio's checkShouldLead: GET the remote namespace, retrying with backoff on errors but NotFound."""
    backoff = backoff_mod.Backoff(initial=0.5, maximum=30.0)
    while True:
        try:
            ns = await client.get(core_v1.Namespace, namespace)
            return should_lead_annotation(ns.metadata.annotations, cluster_id)
        except lk_exceptions.ApiError as e:
            if kube_errors.is_not_found(e):
                return False
            reason = kube_errors.describe(e)
        except (httpx2.HTTPError, OSError) as e:
            reason = type(e).__name__
        delay = backoff.next()
        log.info(
            "cannot read remote namespace yet %s", kv(cluster=remote, reason=reason, retry_in=f"{delay:.1f}s")
        )
        await asyncio.sleep(delay)


@dataclass
class _Running:
    group: tasks.TaskGroup
    controllers: list[Any] = field(default_factory=list)


@dataclass
class ManagedClusters:
    """A `multicluster.ClusterHandler` that starts and stops the per-cluster controllers."""

    cluster_id: str
    namespace: str
    revision: str
    identity: str
    ca_bundle: str
    external_istiod: bool
    leader_election: bool = True
    timing: leader.Timing = field(default_factory=leader.Timing)

    def __post_init__(self) -> None:
        self._running: dict[ids.ClusterId, _Running] = {}
        self.leaders: dict[ids.ClusterId, leader.LeaderElection] = {}
        # cluster -> whether this control plane manages it (set once decided; for status and tests)
        self.decisions: dict[ids.ClusterId, bool] = {}

    def managed(self) -> list[ids.ClusterId]:
        return list(self._running)

    async def set_ca_bundle(self, ca_bundle: str) -> None:
        """The CA changed: every running root-cert publisher and webhook patcher, and the ones
        started later, publish `ca_bundle` (a carotation.BundleListener)."""
        self.ca_bundle = ca_bundle
        for running in self._running.values():
            for c in running.controllers:
                c.set_ca_bundle(ca_bundle)
        log.info("CA bundle republished %s", kv(clusters=",".join(sorted(self._running)) or None))

    async def cluster_added(self, cluster: multicluster.ClusterInfo) -> None:
        await self.cluster_removed(cluster.cluster_id)
        if not cluster.local and not self.external_istiod:
            self.decisions[cluster.cluster_id] = False
            return
        running = _Running(tasks.TaskGroup(f"managed/{cluster.cluster_id}"))
        self._running[cluster.cluster_id] = running
        running.group.start(self._manage(cluster, running), "manage")

    async def cluster_removed(self, cluster_id: ids.ClusterId) -> None:
        running = self._running.pop(cluster_id, None)
        self.leaders.pop(cluster_id, None)
        self.decisions.pop(cluster_id, None)
        if running is not None:
            await running.group.stop()
            for c in running.controllers:
                await c.stop()

    async def stop(self) -> None:
        for cid in list(self._running):
            await self.cluster_removed(cid)

    async def _manage(self, cluster: multicluster.ClusterInfo, running: _Running) -> None:
        cid = cluster.cluster_id
        if not cluster.local:
            lead = await check_should_lead(cluster.client, self.namespace, self.cluster_id, cid)
            self.decisions[cid] = lead
            if not lead:
                log.info(
                    "remote cluster not managed: namespace lacks the annotation %s",
                    kv(cluster=cid, annotation=ANNOTATION_CONTROL_PLANE_CLUSTERS, want=self.cluster_id),
                )
                return
            log.info("managing remote cluster %s", kv(cluster=cid, namespace=self.namespace))
        else:
            self.decisions[cid] = True
        patcher = webhookpatch.WebhookPatcher(cluster.client, cid, self.revision, self.ca_bundle)
        running.controllers.append(patcher)
        running.group.start(patcher.run(), "webhook-patcher")

        async def namespace_controller() -> None:
            ctl = nscontroller.NamespaceController(cluster.client, cid, self.ca_bundle)
            running.controllers.append(ctl)
            try:
                await ctl.run()
            finally:
                running.controllers.remove(ctl)
                await ctl.stop()

        if not self.leader_election:
            await namespace_controller()
            return
        election = leader.LeaderElection(
            cluster.client,
            namespace=self.namespace,
            name=ELECTION_LOCK,
            identity=self.identity,
            key=self.revision if cluster.local else "^" + self.revision,
            on_start=namespace_controller,
            timing=self.timing,
            cluster_id=cid,
        )
        self.leaders[cid] = election
        await election.run()
