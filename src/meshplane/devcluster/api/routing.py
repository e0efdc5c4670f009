"""Parse API paths into the resource they address."""

from __future__ import annotations

from dataclasses import dataclass

from meshplane.devcluster import errors
from meshplane.devcluster.schema import resources


@dataclass(frozen=True, slots=True)
class Target:
    group: str
    version: str
    plural: str
    namespace: str  # "" for cluster-scoped or all namespaces
    name: str
    subresource: str
    rt: resources.ResourceType | None
    legacy_watch: bool = False

    @property
    def collection(self) -> bool:
        return not self.name


_NS_SUBRESOURCES = ("status", "finalize")


def parse(path: str, registry: resources.Registry) -> Target | None:
    """None when the path is not a resource path (discovery, openapi, health, ...)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy = False
    if rest and rest[0] == "watch":
        legacy, rest = True, rest[1:]
        if not rest:
            raise errors.not_found("", "", path)
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in _NS_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise errors.ApiError(404, f"the server could not find the requested resource ({path})", "NotFound")
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    rt = registry.lookup(group, version, plural)
    if rt is None:
        raise errors.ApiError(
            404,
            f"the server could not find the requested resource ({path})",
            "NotFound",
            group=group,
            kind=plural,
        )
    if namespace and not rt.namespaced:
        raise errors.ApiError(404, f"the server could not find the requested resource ({path})", "NotFound")
    if sub and sub not in rt.subresources and registry.extra(group, plural, sub) is None:
        raise errors.ApiError(404, f"the server could not find the requested resource ({path})", "NotFound")
    return Target(group, version, plural, namespace, name, sub, rt, legacy)
