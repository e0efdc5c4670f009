"""Metadata rules shared by the store and the API semantics: resource keys, preconditions,
what counts as a spec change, and which finalizers hold a deletion."""

from __future__ import annotations

from meshplane.devcluster import errors
from meshplane.runtime.jsonobj import Obj


def split_key(key: str) -> tuple[str, str]:
    """(group, plural) of a resource key."""
    group, _, plural = key.rpartition("/")
    return group, plural


def finalizers_pending(key: str, obj: Obj) -> bool:
    """metadata.finalizers, and for a Namespace also spec.finalizers (cleared once it is empty)."""
    if obj["metadata"].get("finalizers"):
        return True
    return key == "namespaces" and bool((obj.get("spec") or {}).get("finalizers"))


def spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def check_preconditions(
    old: Obj, plural: str, group: str, name: str, uid: str | None, rv: int | None
) -> None:
    m = old["metadata"]
    if uid is not None and m.get("uid") != uid:
        raise errors.conflict(
            plural,
            group,
            name,
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: {m.get('uid')}",
        )
    if rv is not None and int(m.get("resourceVersion") or 0) != rv:
        raise errors.conflict(
            plural,
            group,
            name,
            f"Precondition failed: ResourceVersion in precondition: {rv}, "
            f"ResourceVersion in object meta: {m.get('resourceVersion')}",
        )
