"""The Deployment and ReplicaSet controllers of one lab cluster.

Deployment → ReplicaSet named `<deployment>-<pod-template-hash>` (labels and selector carry the
hash) → Pods `<replicaset>-<random>`, all created through the API so admission (sidecar injection)
applies. Template changes roll out (RollingUpdate within maxSurge/maxUnavailable, or Recreate),
old ReplicaSets beyond revisionHistoryLimit are deleted, and both kinds get the status fields
and conditions kubectl reads. The arithmetic lives in `rollout`; here are the loops and writes.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Pod

from meshplane.kube import errors as kube_errors
from meshplane.lab import kubeapi, watchcache
from meshplane.lab.controllers import rollout
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import jsonobj, rfc3339
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

EXPECTATION_TTL = 30.0


def controller_uid(obj: Obj) -> str | None:
    for ref in jsonobj.as_obj(obj.get("metadata")).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return str(ref.get("uid") or "")
    return None


def owner_ref(owner: Obj, kind: str) -> Obj:
    m = jsonobj.as_obj(owner.get("metadata"))
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": m.get("name"),
        "uid": m.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_active(pod: Obj) -> bool:
    st = jsonobj.as_obj(pod.get("status")).get("phase")
    return st not in ("Succeeded", "Failed") and not jsonobj.as_obj(pod.get("metadata")).get(
        "deletionTimestamp"
    )


def pod_from_template(rs: Obj) -> Obj:
    m, spec = jsonobj.as_obj(rs.get("metadata")), jsonobj.as_obj(rs.get("spec"))
    template = copy.deepcopy(jsonobj.as_obj(spec.get("template")))
    tm = jsonobj.as_obj(template.get("metadata"))
    pod_meta: Obj = {
        "generateName": f"{m.get('name')}-",
        "namespace": m.get("namespace"),
        "labels": dict(jsonobj.as_obj(tm.get("labels"))),
        "ownerReferences": [owner_ref(rs, "ReplicaSet")],
    }
    if tm.get("annotations"):
        pod_meta["annotations"] = dict(jsonobj.as_obj(tm.get("annotations")))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": jsonobj.as_obj(template.get("spec")),
    }


class ReplicaSets:
    def __init__(
        self,
        api: kubeapi.Api,
        rss: watchcache.WatchCache,
        pods: watchcache.WatchCache,
        cluster: str,
        clock: clock_mod.Clock,
    ) -> None:
        self.api, self.rss, self.pods, self.cluster, self.clock = api, rss, pods, cluster, clock
        self.trigger = watchcache.Trigger()
        self._pending: dict[str, list[float]] = {}  # rs uid → times of creations not yet seen
        self._deleting: dict[str, float] = {}  # pod uid → time of our delete
        rss.add_handler(self.trigger.fire)
        pods.add_handler(self._on_pod)

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old or {}
        if new is not None and old is None:
            uid = controller_uid(new)
            if uid and self._pending.get(uid):
                self._pending[uid].pop(0)
        if new is None and old is not None:
            self._deleting.pop(str(jsonobj.as_obj(old.get("metadata")).get("uid")), None)
        if controller_uid(obj):
            self.trigger.fire()

    async def run(self) -> None:
        await self.rss.wait_synced()
        await self.pods.wait_synced()
        await watchcache.reconcile_loop(
            "replicaset controller", self.cluster, self.trigger, self.sync_all, 5.0
        )

    async def sync_all(self) -> None:
        by_owner: dict[str, list[Obj]] = {}
        for p in self.pods.items():
            uid = controller_uid(p)
            if uid:
                by_owner.setdefault(uid, []).append(p)
        for rs in self.rss.items():
            if jsonobj.as_obj(rs.get("metadata")).get("deletionTimestamp"):
                continue
            await self.sync(rs, by_owner.get(str(rs["metadata"].get("uid")), []))

    async def sync(self, rs: Obj, owned: list[Obj]) -> None:
        m = rs["metadata"]
        uid, name, ns = str(m.get("uid")), str(m.get("name")), str(m.get("namespace"))
        now = self.clock.monotonic()
        pending = [t for t in self._pending.get(uid, []) if now - t < EXPECTATION_TTL]
        self._pending[uid] = pending
        for k, t in list(self._deleting.items()):
            if now - t >= EXPECTATION_TTL:
                del self._deleting[k]
        active = [p for p in owned if is_active(p) and str(p["metadata"].get("uid")) not in self._deleting]
        want = int(jsonobj.as_obj(rs.get("spec")).get("replicas", 1) or 0)
        diff = len(active) + len(pending) - want
        if diff < 0:
            for _ in range(-diff):
                self._pending[uid].append(self.clock.monotonic())
                try:
                    created = await self.api.create(Pod, pod_from_template(rs), namespace=ns)
                except BaseException:
                    self._pending[uid].pop()
                    raise
                log.info(
                    "created pod %s",
                    kv(cluster=self.cluster, replicaset=f"{ns}/{name}", pod=created["metadata"]["name"]),
                )
        elif diff > 0 and not pending:
            for p in rollout.deletion_order(active)[:diff]:
                pm = p["metadata"]
                self._deleting[str(pm.get("uid"))] = self.clock.monotonic()
                await self.api.delete(Pod, pm["name"], namespace=ns)
                log.info(
                    "deleted pod %s", kv(cluster=self.cluster, replicaset=f"{ns}/{name}", pod=pm["name"])
                )
        status = rollout.replicaset_status(rs, active, self.clock.wall())
        current = jsonobj.as_obj(rs.get("status"))
        if any(current.get(k) != v for k, v in status.items()):
            await self.api.patch(ReplicaSet.Status, name, {"status": status}, namespace=ns)


class Deployments:
    def __init__(
        self,
        api: kubeapi.Api,
        deploys: watchcache.WatchCache,
        rss: watchcache.WatchCache,
        pods: watchcache.WatchCache,
        cluster: str,
        clock: clock_mod.Clock,
    ) -> None:
        self.api, self.deploys, self.rss, self.pods = api, deploys, rss, pods
        self.cluster, self.clock = cluster, clock
        self.trigger = watchcache.Trigger()
        deploys.add_handler(self.trigger.fire)
        rss.add_handler(self.trigger.fire)

    async def run(self) -> None:
        for c in (self.deploys, self.rss, self.pods):
            await c.wait_synced()
        await watchcache.reconcile_loop(
            "deployment controller", self.cluster, self.trigger, self.sync_all, 5.0
        )

    async def sync_all(self) -> None:
        owned: dict[str, list[Obj]] = {}
        for rs in self.rss.items():
            uid = controller_uid(rs)
            if uid:
                owned.setdefault(uid, []).append(rs)
        for d in self.deploys.items():
            if jsonobj.as_obj(d.get("metadata")).get("deletionTimestamp"):
                continue
            await self.sync(d, owned.get(str(d["metadata"].get("uid")), []))

    async def sync(self, d: Obj, rss: list[Obj]) -> None:
        m, spec = d["metadata"], jsonobj.as_obj(d.get("spec"))
        name, ns = str(m["name"]), str(m.get("namespace"))
        template = jsonobj.as_obj(spec.get("template"))
        h = rollout.template_hash(template)
        new = next(
            (r for r in rss if jsonobj.as_obj(r["metadata"].get("labels")).get(rollout.HASH_LABEL) == h), None
        )
        if new is None:
            new = next(
                (
                    r
                    for r in rss
                    if rollout.without_hash(jsonobj.as_obj(jsonobj.as_obj(r.get("spec")).get("template")))
                    == template
                ),
                None,
            )
        desired = int(spec.get("replicas", 1) or 0)
        revisions = [
            int(jsonobj.as_obj(r["metadata"].get("annotations")).get(rollout.REVISION, "0") or 0) for r in rss
        ]
        if new is None:
            try:
                new = await self._create_rs(d, h, max(revisions, default=0) + 1, 0 if rss else desired)
            except Exception as e:
                # 409/422: created in an earlier round, not in the cache yet
                if kube_errors.status_code(e) in (409, 422):
                    return
                raise
            rss = [*rss, new]
        olds = [r for r in rss if r is not new]
        if not spec.get("paused"):
            await self._scale(d, new, olds, desired)
        await self._cleanup(d, olds)
        status = rollout.deployment_status(
            d, str(new["metadata"]["name"]), rss, rfc3339.format(self.clock.wall())
        )
        current = jsonobj.as_obj(d.get("status"))
        if any(current.get(k) != v for k, v in status.items() if k != "conditions") or _cond_changed(
            current, status
        ):
            await self.api.patch(Deployment.Status, name, {"status": status}, namespace=ns)

    async def _create_rs(self, d: Obj, h: str, revision: int, replicas: int) -> Obj:
        m, spec = d["metadata"], jsonobj.as_obj(d.get("spec"))
        template = copy.deepcopy(jsonobj.as_obj(spec.get("template")))
        tm = template.setdefault("metadata", {})
        tm["labels"] = {**jsonobj.as_obj(tm.get("labels")), rollout.HASH_LABEL: h}
        selector = copy.deepcopy(jsonobj.as_obj(spec.get("selector")))
        selector["matchLabels"] = {**jsonobj.as_obj(selector.get("matchLabels")), rollout.HASH_LABEL: h}
        rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{m['name']}-{h}",
                "namespace": m.get("namespace"),
                "labels": dict(tm["labels"]),
                "annotations": {rollout.REVISION: str(revision)},
                "ownerReferences": [owner_ref(d, "Deployment")],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        created = await self.api.create(ReplicaSet, rs, namespace=str(m.get("namespace")))
        log.info(
            "created replicaset %s",
            kv(
                cluster=self.cluster,
                deployment=f"{m.get('namespace')}/{m['name']}",
                replicaset=rs["metadata"]["name"],
            ),
        )
        return created

    async def _scale(self, d: Obj, new: Obj, olds: list[Obj], desired: int) -> None:
        def view(r: Obj) -> rollout.RsView:
            return rollout.RsView(
                str(r["metadata"]["name"]),
                int(jsonobj.as_obj(r.get("spec")).get("replicas", 0) or 0),
                int(jsonobj.as_obj(r.get("status")).get("availableReplicas") or 0),
                str(r["metadata"].get("creationTimestamp") or ""),
            )

        strategy = str(
            jsonobj.as_obj(jsonobj.as_obj(d.get("spec")).get("strategy")).get("type") or "RollingUpdate"
        )
        if strategy == "Recreate":
            running = sum(int(jsonobj.as_obj(r.get("status")).get("replicas") or 0) for r in olds)
            plan = rollout.recreate(desired, view(new), [view(r) for r in olds], running)
        else:
            surge, unavailable = rollout.surge_and_unavailable(d)
            plan = rollout.rolling(desired, view(new), [view(r) for r in olds], surge, unavailable)
        for r in (new, *olds):
            rname = str(r["metadata"]["name"])
            if plan.get(rname, 0) != int(jsonobj.as_obj(r.get("spec")).get("replicas", 0) or 0):
                await self.api.patch(
                    ReplicaSet,
                    rname,
                    {"spec": {"replicas": plan[rname]}},
                    namespace=str(r["metadata"].get("namespace")),
                )
                log.info(
                    "scaled replicaset %s", kv(cluster=self.cluster, replicaset=rname, replicas=plan[rname])
                )

    async def _cleanup(self, d: Obj, olds: list[Obj]) -> None:
        limit = int(jsonobj.as_obj(d.get("spec")).get("revisionHistoryLimit", 10) or 0)
        idle = [
            r
            for r in olds
            if int(jsonobj.as_obj(r.get("spec")).get("replicas", 0) or 0) == 0
            and int(jsonobj.as_obj(r.get("status")).get("replicas") or 0) == 0
        ]
        idle.sort(
            key=lambda r: int(
                jsonobj.as_obj(r["metadata"].get("annotations")).get(rollout.REVISION, "0") or 0
            )
        )
        for r in idle[: max(0, len(idle) - limit)]:
            await self.api.delete(
                ReplicaSet, str(r["metadata"]["name"]), namespace=str(r["metadata"].get("namespace"))
            )


def _cond_changed(current: Obj, status: Obj) -> bool:
    def key(s: Obj) -> list[tuple[Any, ...]]:
        return [
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
            for c in s.get("conditions") or []
        ]

    return key(current) != key(status)
