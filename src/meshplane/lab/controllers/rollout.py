"""The arithmetic of Deployments and ReplicaSets, as pure functions (kubernetes/pkg/controller/
deployment and replicaset): the pod-template-hash, rolling-update and recreate scaling, and the
status and conditions `kubectl rollout status` and `kubectl wait --for=condition=Available` read."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshplane.runtime import jsonobj, rfc3339
from meshplane.runtime.jsonobj import Obj

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand.SafeEncodeString


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """A stable hash of a pod template, encoded like Kubernetes' (no vowels, no 0/1/3)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(fnv32a(data)))


def without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    labels = jsonobj.as_obj(jsonobj.as_obj(t.get("metadata")).get("labels"))
    labels.pop(HASH_LABEL, None)
    return t


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString (`1`, `"25%"`) against `total`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, value)
    text = str(value or "0").strip()
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            return 0
        raw = pct * total / 100.0
        return max(0, math.ceil(raw) if round_up else math.floor(raw))
    try:
        return max(0, int(text))
    except ValueError:
        return 0


def surge_and_unavailable(deploy: Obj) -> tuple[int, int]:
    """maxSurge (rounded up) and maxUnavailable (rounded down); both 0 means unavailable 1."""
    spec = jsonobj.as_obj(deploy.get("spec"))
    desired = int(spec.get("replicas", 1) or 0)
    ru = jsonobj.as_obj(jsonobj.as_obj(spec.get("strategy")).get("rollingUpdate"))
    surge = scaled_value(ru.get("maxSurge", "25%"), desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, desired)


@dataclass(slots=True)
class RsView:
    name: str
    replicas: int  # spec.replicas
    available: int  # status.availableReplicas
    created: str  # creationTimestamp (oldest first when scaling down)


def rolling(
    desired: int, new: RsView, olds: Sequence[RsView], surge: int, unavailable: int
) -> dict[str, int]:
    """One step of a rolling update: the spec.replicas each ReplicaSet should have now."""
    out = {rs.name: rs.replicas for rs in (new, *olds)}
    total = sum(out.values())
    # scale the new ReplicaSet up within maxSurge
    if new.replicas > desired:
        out[new.name] = desired
    elif new.replicas < desired:
        room = desired + surge - total
        if room > 0:
            out[new.name] = new.replicas + min(room, desired - new.replicas)
    # scale old ReplicaSets down while keeping desired - maxUnavailable available
    old_total = sum(out[rs.name] for rs in olds)
    if old_total == 0:
        return out
    min_available = desired - unavailable
    new_unavailable = max(0, out[new.name] - new.available)
    budget = sum(out.values()) - min_available - new_unavailable
    ordered = sorted(olds, key=lambda r: r.created)
    for rs in ordered:  # unhealthy pods of old ReplicaSets go first
        if budget <= 0:
            break
        unhealthy = max(0, out[rs.name] - rs.available)
        cut = min(unhealthy, budget)
        out[rs.name] -= cut
        budget -= cut
    available = new.available + sum(min(rs.available, out[rs.name]) for rs in olds)
    can_remove = available - min_available
    for rs in ordered:
        if can_remove <= 0:
            break
        cut = min(out[rs.name], can_remove)
        out[rs.name] -= cut
        can_remove -= cut
    return out


def recreate(desired: int, new: RsView, olds: Sequence[RsView], old_pods_running: int) -> dict[str, int]:
    """Recreate: every old ReplicaSet to zero, the new one up once no old pod is left."""
    out = {rs.name: 0 for rs in olds}
    out[new.name] = desired if old_pods_running == 0 else new.replicas
    return out


def _condition(old: Sequence[Obj], ctype: str, status: str, reason: str, message: str, now: str) -> Obj:
    prev = next((c for c in old if jsonobj.as_obj(c).get("type") == ctype), None)
    same = prev is not None and prev.get("status") == status
    changed = prev is None or (prev.get("reason"), prev.get("message")) != (reason, message)
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": prev.get("lastTransitionTime", now) if same and prev else now,
        "lastUpdateTime": now if changed or not prev else prev.get("lastUpdateTime", now),
    }


def deployment_status(deploy: Obj, new_name: str, rss: Sequence[Obj], now: str) -> Obj:
    """status of a Deployment from its ReplicaSets (`rss`, the new one included)."""
    spec, meta = jsonobj.as_obj(deploy.get("spec")), jsonobj.as_obj(deploy.get("metadata"))
    desired = int(spec.get("replicas", 1) or 0)
    _, unavailable = surge_and_unavailable(deploy)

    def total(field: str, subset: Sequence[Obj]) -> int:
        return sum(int(jsonobj.as_obj(r.get("status")).get(field) or 0) for r in subset)

    new = [r for r in rss if jsonobj.as_obj(r.get("metadata")).get("name") == new_name]
    replicas, updated = total("replicas", rss), total("replicas", new)
    ready, available = total("readyReplicas", rss), total("availableReplicas", rss)
    old_conditions = [
        c for c in jsonobj.as_obj(deploy.get("status")).get("conditions") or [] if isinstance(c, dict)
    ]
    if available >= desired - unavailable:
        avail = _condition(
            old_conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
        )
    else:
        avail = _condition(
            old_conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
        )
    complete = updated == desired and replicas == desired and available >= desired
    if complete:
        prog = _condition(
            old_conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{new_name}" has successfully progressed.',
            now,
        )
    else:
        prog = _condition(
            old_conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{new_name}" is progressing.',
            now,
        )
    status: Obj = {
        "observedGeneration": int(meta.get("generation") or 1),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": [avail, prog],
    }
    if desired - available > 0:
        status["unavailableReplicas"] = desired - available
    return status


def pod_ready_since(pod: Obj) -> str | None:
    """lastTransitionTime of the pod's Ready=True condition, or None when not ready."""
    for c in jsonobj.as_obj(pod.get("status")).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return str(c.get("lastTransitionTime") or "") if c.get("status") == "True" else None
    return None


def _time_or_zero(text: str) -> float:
    """A condition's or object's timestamp; 0 (the epoch) when it is missing or malformed."""
    try:
        return rfc3339.parse(text)
    except ValueError:
        return 0.0


def replicaset_status(rs: Obj, pods: Sequence[Obj], wall: float) -> Obj:
    """status of a ReplicaSet from its active pods."""
    spec, meta = jsonobj.as_obj(rs.get("spec")), jsonobj.as_obj(rs.get("metadata"))
    min_ready = float(spec.get("minReadySeconds") or 0)
    tlabels = jsonobj.as_obj(
        jsonobj.as_obj(jsonobj.as_obj(spec.get("template")).get("metadata")).get("labels")
    )
    ready = available = labeled = 0
    for p in pods:
        plabels = jsonobj.as_obj(jsonobj.as_obj(p.get("metadata")).get("labels"))
        if all(plabels.get(k) == v for k, v in tlabels.items()):
            labeled += 1
        since = pod_ready_since(p)
        if since is None:
            continue
        ready += 1
        if min_ready <= 0 or _time_or_zero(since) + min_ready <= wall:
            available += 1
    return {
        "replicas": len(pods),
        "fullyLabeledReplicas": labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": int(meta.get("generation") or 1),
    }


def deletion_order(pods: Sequence[Obj]) -> list[Obj]:
    """Which pods a ReplicaSet scales down first (ActivePods ordering): unscheduled, pending,
    not ready, more restarts, newer."""

    def rank(p: Obj) -> tuple[int, int, int, int, float]:
        spec, status = jsonobj.as_obj(p.get("spec")), jsonobj.as_obj(p.get("status"))
        restarts = sum(
            int(jsonobj.as_obj(c).get("restartCount") or 0) for c in status.get("containerStatuses") or []
        )
        created = _time_or_zero(str(jsonobj.as_obj(p.get("metadata")).get("creationTimestamp") or ""))
        return (
            0 if not spec.get("nodeName") else 1,
            0 if status.get("phase") == "Pending" else 1,
            0 if pod_ready_since(p) is None else 1,
            -restarts,
            -created,
        )

    return sorted(pods, key=rank)
