"""Whether a pod gets a sidecar (Istio's injectRequired with the default `enabled` policy)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.model import injection
from meshplane.runtime import jsonobj


@dataclass(frozen=True, slots=True)
class Decision:
    inject: bool
    reason: str


def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _strmap(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def decide(pod: Mapping[str, Any], namespace: str) -> Decision:
    """The webhook's own checks; the namespace/object selectors were applied by the API server."""
    spec = jsonobj.as_mapping(pod.get("spec"))
    meta = _meta(pod)
    annotations = _strmap(meta.get("annotations"))
    labels = _strmap(meta.get("labels"))
    if injection.STATUS_ANNOTATION in annotations:
        return Decision(False, "already injected (sidecar.istio.io/status is set)")
    if spec.get("hostNetwork") is True:
        return Decision(False, "pod uses the host network")
    if namespace in injection.IGNORED_NAMESPACES:
        return Decision(False, f"namespace {namespace} is never injected")
    selector = labels.get(injection.INJECT_LABEL, annotations.get(injection.INJECT_LABEL, ""))
    value = selector.lower()
    if value in ("y", "yes", "true", "on"):
        return Decision(True, f"{injection.INJECT_LABEL}={selector}")
    if value == "":
        return Decision(True, "injection policy enabled")
    return Decision(False, f"{injection.INJECT_LABEL}={selector}")
