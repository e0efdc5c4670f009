"""What every networking.istio.io object has: group/version check, kind, namespace/name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.networking import errors, fields

GROUP = "networking.istio.io"
# v1 is what the guide's expose-istiod.yaml uses; v1beta1 and v1alpha3 serve the same schema.
VERSIONS = ("v1", "v1beta1", "v1alpha3")


@dataclass(frozen=True, slots=True)
class Meta:
    kind: str
    name: str
    namespace: str

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def meta(
    obj: Mapping[str, Any], kind: str, default_namespace: str = "default"
) -> tuple[Meta, dict[str, Any]]:
    """Check apiVersion/kind and return (meta, spec); errors name the object as far as it is known."""
    if not isinstance(obj, Mapping):
        raise errors.ConfigError(kind, "", f"must be an object, got {type(obj).__name__}")
    md = obj.get("metadata")
    name = md.get("name") if isinstance(md, Mapping) else None
    namespace = md.get("namespace") if isinstance(md, Mapping) else None
    ref = f"{kind} {namespace or default_namespace}/{name or '?'}"
    r = fields.Reader(ref)
    api_version = r.text(obj, "apiVersion", "", required=True)
    group, _, version = api_version.partition("/")
    if group != GROUP or version not in VERSIONS:
        raise r.fail("apiVersion", f"must be {GROUP}/{'|'.join(VERSIONS)}, got {api_version!r:.60}")
    if obj.get("kind") != kind:
        raise r.fail("kind", f"must be {kind}, got {obj.get('kind')!r:.40}")
    metadata = r.obj(obj, "metadata", "", required=True)
    name = r.text(metadata, "name", "metadata", required=True)
    namespace = r.text(metadata, "namespace", "metadata") or default_namespace
    spec = r.obj(obj, "spec", "", required=True)
    return Meta(kind, name, namespace), spec
