"""CustomResourceDefinitions: creating one starts serving its kind; deleting one removes its objects.

Registration is a synchronous store hook, so a CR can be created as soon as the CRD create
returned. Instance clean-up on deletion is a background controller (the CRD carries the
customresourcecleanup finalizer until its objects are gone, as in Kubernetes).
"""

from __future__ import annotations

import logging
import re

from meshplane.devcluster import errors
from meshplane.devcluster.controllers import objects
from meshplane.devcluster.schema import resources, schemas
from meshplane.devcluster.storage import store
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

KEY = "apiextensions.k8s.io/customresourcedefinitions"


def types_of(crd: Obj) -> list[tuple[resources.ResourceType, Obj | None]]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, kind, plural = spec.get("group", ""), names.get("kind", ""), names.get("plural", "")
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        subs = tuple(s for s in ("status",) if s in (v.get("subresources") or {}))
        cols = tuple(
            (str(c.get("name", "")), str(c.get("type", "string")), str(c.get("jsonPath", "")))
            for c in v.get("additionalPrinterColumns") or []
        )
        rt = resources.ResourceType(
            group,
            v.get("name", ""),
            kind,
            plural,
            names.get("singular") or kind.lower(),
            spec.get("scope", "Namespaced") == "Namespaced",
            tuple(names.get("shortNames") or ()),
            tuple(names.get("categories") or ()),
            subs,
            schema_name=schemas.crd_component_name(group, v.get("name", ""), kind),
            crd=True,
            printer_columns=cols,
        )
        out.append((rt, (v.get("schema") or {}).get("openAPIV3Schema")))
    return out


def validate(crd: Obj) -> list[tuple[str, str, str]]:
    """CRD-specific checks (422 causes)."""
    causes: list[tuple[str, str, str]] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group", ""), names.get("plural", "")
    for field, value in (
        ("spec.group", group),
        ("spec.names.plural", plural),
        ("spec.names.kind", names.get("kind")),
    ):
        if not value:
            causes.append(("FieldValueRequired", field, "Required value"))
    if group and "." not in group:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.group",
                f'Invalid value: "{group}": should be a domain with at least one dot',
            )
        )
    if plural and not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", plural):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.names.plural",
                f'Invalid value: "{plural}": a lowercase RFC 1123 label',
            )
        )
    if group in {rt.group for rt in resources.builtin_types()}:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.group",
                f'Invalid value: "{group}": the group is served by the built-in API',
            )
        )
    name = (crd.get("metadata") or {}).get("name", "")
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            (
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "FieldValueNotSupported",
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            (
                "FieldValueRequired",
                "spec.versions",
                "Required value: must have exactly one version marked as storage version",
            )
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    return causes


class CrdServing:
    """Keeps the registry and schemas in step with stored CRDs (a store hook)."""

    def __init__(self, reg: resources.Registry, sch: schemas.Schemas) -> None:
        self._reg = reg
        self._sch = sch
        self._served: dict[str, list[resources.ResourceType]] = {}  # crd name -> types

    def hook(self, ev: store.Event) -> None:
        if ev.key != KEY:
            return
        name = ev.obj["metadata"]["name"]
        for rt in self._served.pop(name, []):
            self._sch.drop_crd(rt.group, rt.version, rt.kind)
            self._reg.remove(rt.group, rt.plural)
        if ev.type == store.DELETED:
            log.info("crd no longer served crd=%s", name)
            return
        served = []
        for rt, schema in types_of(ev.obj):
            self._sch.set_crd(rt.group, rt.version, rt.kind, schema, rt.namespaced)
            self._reg.add(rt)
            served.append(rt)
        self._served[name] = served


async def cleanup_loop(st: store.Store, api: objects.ObjectApi, reg: resources.Registry) -> None:
    """Delete the objects of CRDs marked for deletion, then drop their cleanup finalizer."""
    sub = st.subscribe({KEY})
    try:
        await _sweep(st)
        while True:
            ev = await sub.get()
            if ev is None:
                return
            if ev.type != store.DELETED and ev.obj["metadata"].get("deletionTimestamp"):
                await _sweep(st)
    finally:
        sub.close()


async def _sweep(st: store.Store) -> None:
    for crd in list(st.items(KEY)):
        meta = crd["metadata"]
        if not meta.get("deletionTimestamp") or objects.CRD_CLEANUP not in (meta.get("finalizers") or []):
            continue
        spec = crd.get("spec") or {}
        key = f"{spec.get('group')}/{(spec.get('names') or {}).get('plural')}"
        targets = [(o["metadata"].get("namespace", "") or "", o["metadata"]["name"]) for o in st.items(key)]
        try:
            await st.delete_many(key, targets)
            fresh = st.get(KEY, "", meta["name"])
            if fresh is None:
                continue
            fresh["metadata"]["finalizers"] = [
                f for f in fresh["metadata"].get("finalizers") or [] if f != objects.CRD_CLEANUP
            ]
            await st.update(KEY, fresh, expected_rv=int(fresh["metadata"]["resourceVersion"]))
            log.info("crd instances removed crd=%s objects=%d", meta["name"], len(targets))
        except errors.ApiError as e:
            log.warning("crd cleanup failed crd=%s error=%s", meta["name"], e)
        except Exception:
            log.exception("crd cleanup failed crd=%s", meta["name"])
