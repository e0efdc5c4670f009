"""What every security.istio.io object has: group/version check, kind, namespace/name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshplane.model import crfields
from meshplane.model.crfields import Meta

GROUP = "security.istio.io"
# v1 is current; v1beta1 serves the same schema (istio/api security/v1beta1)
VERSIONS = ("v1", "v1beta1")

__all__ = ["GROUP", "VERSIONS", "Meta", "meta"]


def meta(
    obj: Mapping[str, Any], kind: str, default_namespace: str = "default"
) -> tuple[Meta, dict[str, Any]]:
    """Check apiVersion/kind and return (meta, spec); errors name the object as far as it is known."""
    return crfields.meta(obj, kind, GROUP, VERSIONS, default_namespace)
