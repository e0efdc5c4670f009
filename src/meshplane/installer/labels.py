"""Istio's install labels, stamped on every object an install applies (what uninstall --purge selects).

The namespace is the exception, as with istioctl: it is created without them, so `uninstall --purge`
leaves it (and what else lives in it) behind, and the guide deletes it with kubectl afterwards.
"""

from __future__ import annotations

from typing import Any

from meshplane import __version__

COMPONENT = "operator.istio.io/component"
MANAGED = "operator.istio.io/managed"
VERSION = "operator.istio.io/version"
OWNER = "install.operator.istio.io/owning-resource"
OWNER_NAMESPACE = "install.operator.istio.io/owning-resource-namespace"
REV = "istio.io/rev"

BASE = "Base"
PILOT = "Pilot"
INGRESS = "IngressGateways"
EGRESS = "EgressGateways"
COMPONENTS = (BASE, PILOT, INGRESS, EGRESS, "Cni", "Ztunnel")


def install_labels(component: str, owner: str, owner_namespace: str, revision: str) -> dict[str, str]:
    return {
        COMPONENT: component,
        MANAGED: "Reconcile",
        VERSION: __version__,
        OWNER: owner,
        OWNER_NAMESPACE: owner_namespace,
        REV: revision or "default",
    }


def stamp(obj: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """Add `labels` to the object's metadata.labels (object's own keys kept where they differ)."""
    meta = obj.setdefault("metadata", {})
    merged = dict(labels)
    merged.update(meta.get("labels") or {})
    # the component and install keys always come from the install, never from a template
    for key in (COMPONENT, MANAGED, VERSION, OWNER, OWNER_NAMESPACE):
        merged[key] = labels[key]
    meta["labels"] = merged
    return obj
