"""Garbage collection and namespace deletion, as Kubernetes' controllers do them.

- ownerReferences: an object whose owners are all gone is deleted (background propagation); the
  dependents of an owner in foreground deletion are deleted before the owner's `foregroundDeletion`
  finalizer is removed; an owner with the `orphan` finalizer has its references removed from its
  dependents, then the finalizer.
- a Namespace marked for deletion (phase Terminating) has everything in it deleted; once it is
  empty its `kubernetes` finalizer is removed and the namespace goes.

One sweep looks at the whole store; sweeps run after the events that can make work (deletions,
deletion marks, new objects with owners), at start, and again while work is pending.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable

from meshplane.devcluster import errors
from meshplane.devcluster.controllers import objects
from meshplane.devcluster.schema import resources
from meshplane.devcluster.storage import store
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)


def _relevant(ev: store.Event) -> bool:
    if ev.type == store.DELETED:
        return True
    meta = ev.obj["metadata"]
    if meta.get("deletionTimestamp"):
        return True
    return ev.type == store.ADDED and bool(meta.get("ownerReferences"))


class Collector:
    def __init__(
        self,
        get_store: Callable[[], store.Store],
        get_objects: Callable[[], objects.ObjectApi],
        get_registry: Callable[[], resources.Registry],
        *,
        retry_interval: float = 1.0,
    ) -> None:
        self._store = get_store
        self._objects = get_objects
        self._registry = get_registry
        self._retry = retry_interval

    async def run(self) -> None:
        st = self._store()
        sub = st.subscribe()
        try:
            pending = await self.sweep()
            while True:
                try:
                    ev = await asyncio.wait_for(sub.get(), self._retry if pending else None)
                except TimeoutError:
                    pending = await self.sweep()
                    continue
                if ev is None:
                    return
                dirty = _relevant(ev)
                while not sub.queue.empty():  # coalesce a burst into one sweep
                    nxt = sub.queue.get_nowait()
                    if nxt is None:
                        return
                    dirty = dirty or _relevant(nxt)
                if dirty:
                    pending = await self.sweep()
        finally:
            sub.close()

    async def sweep(self) -> bool:
        """One pass; returns True while work remains (objects waiting on finalizers or grace)."""
        pending = False
        try:
            pending |= await self._namespaces()
            pending |= await self._owners()
        except errors.ApiError as e:
            log.info("gc pass interrupted cluster=%s error=%s", self._store().cluster, e)
            pending = True
        except Exception:  # a malformed stored object must not stop garbage collection for good
            log.exception("gc pass failed cluster=%s", self._store().cluster)
            pending = True
        return pending

    def _rt(self, key: str) -> resources.ResourceType | None:
        return self._registry().by_key(key)

    async def _delete(self, key: str, obj: Obj, propagation: str | None = None) -> None:
        rt = self._rt(key)
        m = obj["metadata"]
        if rt is None or m.get("deletionTimestamp"):
            return
        try:
            await self._objects().delete(
                rt,
                m.get("namespace", "") or "",
                m["name"],
                objects.DeleteOptions(propagation=propagation, uid=m.get("uid")),
            )
        except errors.ApiError as e:
            if e.code not in (404, 409):
                raise

    async def _namespaces(self) -> bool:
        st = self._store()
        pending = False
        for ns in list(st.items("namespaces")):
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            name = ns["metadata"]["name"]
            left = list(st.namespaced_items(name))
            for key, obj in left:
                await self._delete(key, obj)
            if any(True for _ in st.namespaced_items(name)):
                pending = True
                continue
            fresh = st.get("namespaces", "", name)
            if fresh is None:
                continue
            spec = fresh.setdefault("spec", {})
            if "kubernetes" in (spec.get("finalizers") or []):
                spec["finalizers"] = [f for f in spec["finalizers"] if f != "kubernetes"]
                await st.update("namespaces", fresh, expected_rv=int(fresh["metadata"]["resourceVersion"]))
                log.info("namespace finalized cluster=%s namespace=%s", st.cluster, name)
        return pending

    async def _owners(self) -> bool:
        st = self._store()
        pending = False
        dependents: dict[str, list[tuple[str, Obj]]] = {}
        for key in st.resource_keys():
            for obj in list(st.items(key)):
                for ref in obj["metadata"].get("ownerReferences") or []:
                    dependents.setdefault(str(ref.get("uid", "")), []).append((key, obj))
        for uid, deps in dependents.items():
            where = st.by_uid(uid)
            owner = st.peek(*where) if where else None
            fins = (owner or {}).get("metadata", {}).get("finalizers") or []
            deleting = bool(owner and owner["metadata"].get("deletionTimestamp"))
            for key, dep in deps:
                if owner is None:
                    if self._all_owners_gone(dep):
                        await self._delete(key, dep)
                        pending = pending or bool(dep["metadata"].get("finalizers"))
                elif deleting and objects.ORPHAN in fins:
                    await self._drop_ref(key, dep, uid)
                elif deleting and objects.FOREGROUND in fins:
                    await self._delete(key, dep, "Foreground")
                    pending = True
        for key in st.resource_keys():
            for obj in list(st.items(key)):
                m = obj["metadata"]
                if not m.get("deletionTimestamp"):
                    continue
                fins = m.get("finalizers") or []
                if objects.ORPHAN in fins:
                    if self._has_dependents(m.get("uid", "")):
                        pending = True
                    else:
                        await self._drop_finalizer(key, obj, objects.ORPHAN)
                elif objects.FOREGROUND in fins:
                    if self._has_dependents(m.get("uid", "")):
                        pending = True
                    else:
                        await self._drop_finalizer(key, obj, objects.FOREGROUND)
        return pending

    def _all_owners_gone(self, obj: Obj) -> bool:
        st = self._store()
        return all(
            st.by_uid(str(r.get("uid", ""))) is None for r in obj["metadata"].get("ownerReferences") or []
        )

    def _has_dependents(self, uid: str) -> bool:
        st = self._store()
        for key in st.resource_keys():
            for obj in st.items(key):
                if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or []):
                    return True
        return False

    async def _drop_ref(self, key: str, obj: Obj, uid: str) -> None:
        new = copy.deepcopy(obj)
        refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            new["metadata"].pop("ownerReferences", None)
        await self._store().update(key, new, expected_rv=int(obj["metadata"]["resourceVersion"]))

    async def _drop_finalizer(self, key: str, obj: Obj, finalizer: str) -> None:
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        await self._store().update(key, new, expected_rv=int(obj["metadata"]["resourceVersion"]))
