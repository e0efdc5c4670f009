"""The PodDisruptionBudget status, as kube-controller-manager's disruption controller writes it
(kubernetes/kubernetes pkg/controller/disruption/disruption.go), so that the eviction
subresource (`api/eviction`) can honour budgets.

For each budget: the pods its selector matches in its namespace (a null selector matches none,
an empty one all); `expectedPods` and `desiredHealthy` from `minAvailable` (an integer: that many,
expected = the matched pods) or from a percentage / `maxUnavailable` over the scale of the pods'
controllers (a ReplicaSet owned by a Deployment counts the Deployment's replicas; ReplicaSets,
StatefulSets, ReplicationControllers their own; a pod without a controller is not counted);
`currentHealthy` = matched pods that are Ready, not being deleted and not in `disruptedPods`
(evictions not yet seen as deletions, forgotten after DELETION_TIMEOUT); `disruptionsAllowed` =
currentHealthy - desiredHealthy (at least 0, and 0 when nothing is expected); the
DisruptionAllowed condition; `observedGeneration`. A controller that cannot be found makes the
budget fail safe: no disruption allowed, condition reason SyncFailed.

Recomputed for a namespace's budgets on every pod or budget event there, and every RECHECK
seconds while a budget holds disrupted pods.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from meshplane.devcluster import errors
from meshplane.devcluster.storage import store
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

PDB_KEY = "policy/poddisruptionbudgets"
DELETION_TIMEOUT = 120.0  # seconds an eviction is remembered (the controller's DeletionTimeout)
RECHECK = 30.0
Matcher = Callable[[Obj | None, dict[str, str]], bool]  # (LabelSelector, labels) -> matches
_SCALES = {
    "ReplicaSet": "apps/replicasets",
    "StatefulSet": "apps/statefulsets",
    "ReplicationController": "replicationcontrollers",
    "Deployment": "apps/deployments",
}


class SyncFailed(Exception):
    pass


def ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def scaled(value: object, total: int, name: str) -> int:
    """intstr: an int, or "N%" of `total` rounded up (GetScaledValueFromIntOrPercent(…, true))."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        return math.ceil(int(text[:-1]) * total / 100)
    if text.isdigit():
        return int(text)
    raise SyncFailed(f"invalid value for {name}: {text!r}")


def _controller(pod: Obj) -> Obj | None:
    return next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def expected_scale(st: store.Store, namespace: str, pods: list[Obj]) -> int:
    """The sum of the replicas of the pods' controllers (each counted once)."""
    seen: dict[str, int] = {}
    for pod in pods:
        ref = _controller(pod)
        if ref is None:
            continue  # unmanaged: not counted (the controller logs a warning)
        kind, name = str(ref.get("kind")), str(ref.get("name"))
        key = _SCALES.get(kind)
        owner = st.peek(key, namespace, name) if key else None
        if owner is None:
            raise SyncFailed(f"found no controller {kind} {name!r} for pod {pod['metadata']['name']!r}")
        if (
            kind == "ReplicaSet"
            and (top := _controller(owner)) is not None
            and top.get("kind") == "Deployment"
        ):
            kind, name = "Deployment", str(top.get("name"))
            owner = st.peek(_SCALES["Deployment"], namespace, name)
            if owner is None:
                raise SyncFailed(f"found no controller Deployment {name!r}")
        seen[f"{kind}/{name}"] = int((owner.get("spec") or {}).get("replicas", 1) or 0)
    return sum(seen.values())


def compute(st: store.Store, pdb: Obj, matches: Matcher, now: float) -> Obj:
    """The status the disruption controller would write for `pdb` now."""
    md, spec = pdb["metadata"], pdb.get("spec") or {}
    ns = md["namespace"]
    old = pdb.get("status") or {}
    generation = md.get("generation", 1)
    pods = [
        p for p in st.items("pods", ns) if matches(spec.get("selector"), p["metadata"].get("labels") or {})
    ]
    try:
        if spec.get("maxUnavailable") is not None:
            expected = expected_scale(st, ns, pods)
            desired = max(expected - scaled(spec["maxUnavailable"], expected, "maxUnavailable"), 0)
        elif isinstance(spec.get("minAvailable"), int):
            desired, expected = int(spec["minAvailable"]), len(pods)
        elif spec.get("minAvailable") is not None:
            expected = expected_scale(st, ns, pods)
            desired = scaled(spec["minAvailable"], expected, "minAvailable")
        else:
            desired, expected = 0, len(pods)
    except SyncFailed as e:
        return _status(old, generation, 0, 0, 0, 0, {}, "SyncFailed", str(e), now)
    live = {p["metadata"]["name"]: p for p in pods if not p["metadata"].get("deletionTimestamp")}
    disrupted = {
        name: when
        for name, when in (old.get("disruptedPods") or {}).items()
        if name in live and rfc3339.parse(when) + DELETION_TIMEOUT > now
    }
    healthy = sum(1 for name, p in live.items() if ready(p) and name not in disrupted)
    allowed = healthy - desired if expected > 0 else 0
    reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
    return _status(old, generation, healthy, desired, expected, max(allowed, 0), disrupted, reason, "", now)


def _status(
    old: Obj,
    generation: int,
    healthy: int,
    desired: int,
    expected: int,
    allowed: int,
    disrupted: dict[str, str],
    reason: str,
    message: str,
    now: float,
) -> Obj:
    status = "True" if allowed > 0 else "False"
    prev = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    changed = prev is None or (prev.get("status"), prev.get("reason")) != (status, reason)
    out: Obj = {
        "observedGeneration": generation,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "disruptionsAllowed": allowed,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": rfc3339.format(now)
                if changed
                else (prev or {}).get("lastTransitionTime", rfc3339.format(now)),
            }
        ],
    }
    if disrupted:
        out["disruptedPods"] = disrupted
    return out


class DisruptionController:
    def __init__(
        self, get_store: Callable[[], store.Store], matches: Matcher, wall: Callable[[], float]
    ) -> None:
        self._store = get_store
        self._matches = matches
        self._wall = wall

    async def run(self) -> None:
        st = self._store()
        sub = st.subscribe({"pods", PDB_KEY})
        try:
            pending = await self.sync(None)
            while True:
                try:
                    ev = await asyncio.wait_for(sub.get(), RECHECK if pending else None)
                    if ev is None:  # the store closed
                        return
                    ns: str | None = ev.obj["metadata"].get("namespace") or ""
                except TimeoutError:
                    ns = None
                pending = await self.sync(ns)
        finally:
            sub.close()

    async def sync(self, namespace: str | None) -> bool:
        """Write the status of the budgets in `namespace` (all when None); True while any budget
        remembers disrupted pods (a recheck forgets them in time)."""
        st = self._store()
        pending = False
        for pdb in st.list(PDB_KEY, namespace):
            status = compute(st, pdb, self._matches, self._wall())
            pending = pending or bool(status.get("disruptedPods"))
            if status != pdb.get("status"):
                pdb["status"] = status
                try:
                    await st.update(PDB_KEY, pdb, expected_rv=int(pdb["metadata"]["resourceVersion"]))
                except errors.ApiError as e:  # a conflict: the next event recomputes
                    log.debug("pdb status not written pdb=%s error=%s", pdb["metadata"]["name"], e)
        return pending
