"""What every networking.istio.io object has: group/version check, kind, namespace/name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshplane.model import crfields
from meshplane.model.crfields import Meta

GROUP = "networking.istio.io"
# v1 is what the guide's expose-istiod.yaml uses; v1beta1 and v1alpha3 serve the same schema.
VERSIONS = ("v1", "v1beta1", "v1alpha3")

__all__ = ["GROUP", "VERSIONS", "Meta", "meta"]


def meta(
    obj: Mapping[str, Any], kind: str, default_namespace: str = "default"
) -> tuple[Meta, dict[str, Any]]:
    """Check apiVersion/kind and return (meta, spec); errors name the object as far as it is known."""
    return crfields.meta(obj, kind, GROUP, VERSIONS, default_namespace)
