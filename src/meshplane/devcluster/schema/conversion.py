"""Conversion between built-in versions that share storage but not a schema.

HorizontalPodAutoscalers are stored as autoscaling/v2 and also served as autoscaling/v1, as
kube-apiserver does (k8s.io/kubernetes pkg/apis/autoscaling/v1/conversion.go): v1 has only a CPU
utilization target; the v2 fields it cannot hold (other metrics, behavior, current metrics,
conditions) ride in the `autoscaling.alpha.kubernetes.io/*` annotations so that a v1 read-modify-
write keeps them. Difference from kube-apiserver: the annotations hold those fields in their v2
JSON form (kube-apiserver writes autoscaling/v1 MetricSpec JSON).

Other kinds: one version each, nothing to convert. CRD versions share storage and differ only in
apiVersion (api/responses.present).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from meshplane.devcluster import errors
from meshplane.runtime.jsonobj import Obj

HPA_KEY = "autoscaling/horizontalpodautoscalers"
STORAGE_VERSION = {HPA_KEY: "autoscaling/v2"}
METRICS = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
_ROUND_TRIP = (METRICS, CURRENT_METRICS, BEHAVIOR, CONDITIONS)


def converts(key: str, api_version: str) -> bool:
    """Whether objects of storage key `key` need converting to be served as `api_version`."""
    stored = STORAGE_VERSION.get(key)
    return stored is not None and stored != api_version


def _is_cpu_utilization(metric: Any) -> bool:
    if not isinstance(metric, dict) or metric.get("type") != "Resource":
        return False
    res = metric.get("resource") or {}
    target = res.get("target") or res.get("current") or {}
    return bool(res.get("name") == "cpu" and target.get("averageUtilization") is not None)


def to_served(key: str, api_version: str, obj: Obj) -> Obj:
    """A stored object as `api_version` shows it."""
    if not converts(key, api_version):
        return obj
    spec2, status2 = obj.get("spec") or {}, obj.get("status")
    meta = copy.deepcopy(obj.get("metadata") or {})
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _ROUND_TRIP}
    spec: Obj = {k: spec2[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec2}
    metrics = spec2.get("metrics") or []
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"]
    others = [m for m in metrics if m is not cpu]
    if others:
        notes[METRICS] = json.dumps(others, separators=(",", ":"))
    if spec2.get("behavior") is not None:
        notes[BEHAVIOR] = json.dumps(spec2["behavior"], separators=(",", ":"))
    out: Obj = {"apiVersion": api_version, "kind": obj.get("kind"), "metadata": meta, "spec": spec}
    if isinstance(status2, dict):
        status = {
            k: status2[k]
            for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
            if k in status2
        }
        current = status2.get("currentMetrics") or []
        cpu_now = next((m for m in current if _is_cpu_utilization(m)), None)
        if cpu_now is not None:
            status["currentCPUUtilizationPercentage"] = cpu_now["resource"]["current"]["averageUtilization"]
        rest = [m for m in current if m is not cpu_now]
        if rest:
            notes[CURRENT_METRICS] = json.dumps(rest, separators=(",", ":"))
        if status2.get("conditions"):
            notes[CONDITIONS] = json.dumps(status2["conditions"], separators=(",", ":"))
        out["status"] = status
    if notes:
        meta["annotations"] = notes
    else:
        meta.pop("annotations", None)
    return out


def _annotation(meta: Obj, key: str, name: str) -> Any:
    raw = (meta.get("annotations") or {}).get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise errors.invalid(
            "HorizontalPodAutoscaler",
            "autoscaling",
            name,
            [("FieldValueInvalid", f"metadata.annotations[{key}]", f"Invalid value: not JSON: {e}")],
        ) from e


def to_storage(key: str, api_version: str, obj: Obj) -> Obj:
    """An object written as `api_version` in its stored form (after validation and defaults)."""
    if not converts(key, api_version):
        return obj
    meta = copy.deepcopy(obj.get("metadata") or {})
    name = str(meta.get("name", ""))
    spec1, status1 = obj.get("spec") or {}, obj.get("status")
    spec: Obj = {k: spec1[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec1}
    metrics: list[Any] = []
    if spec1.get("targetCPUUtilizationPercentage") is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": spec1["targetCPUUtilizationPercentage"],
                    },
                },
            }
        )
    metrics += _annotation(meta, METRICS, name) or []
    if metrics:
        spec["metrics"] = metrics
    behavior = _annotation(meta, BEHAVIOR, name)
    if behavior is not None:
        spec["behavior"] = behavior
    out: Obj = {"apiVersion": STORAGE_VERSION[key], "kind": obj.get("kind"), "metadata": meta, "spec": spec}
    if isinstance(status1, dict):
        status = {
            k: status1[k]
            for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
            if k in status1
        }
        current: list[Any] = []
        if status1.get("currentCPUUtilizationPercentage") is not None:
            current.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "current": {"averageUtilization": status1["currentCPUUtilizationPercentage"]},
                    },
                }
            )
        current += _annotation(meta, CURRENT_METRICS, name) or []
        if current:
            status["currentMetrics"] = current
        conditions = _annotation(meta, CONDITIONS, name)
        if conditions:
            status["conditions"] = conditions
        out["status"] = status
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _ROUND_TRIP}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return out
