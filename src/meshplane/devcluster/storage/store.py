"""The dev cluster's object store: working set in memory, every write persisted before it is acked.

One cluster-wide resourceVersion orders every change. Each committed change becomes an `Event`
kept in a bounded history (for watches that resume from an RV) and fanned out to subscribers.
Objects held by the store are never mutated in place: `get`/`list` return copies; events share
the stored object, so event consumers must treat `event.obj` as read-only.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from meshplane.devcluster import errors
from meshplane.devcluster.storage import meta, persistence
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

T = TypeVar("T")
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # ADDED MODIFIED DELETED
    key: str  # resource key: `pods`, `apps/deployments`
    obj: Obj  # read-only
    rv: int
    old: Obj | None = None  # the previous state (MODIFIED, DELETED), read-only


@dataclass(eq=False)
class Subscription:
    """A queue of events for some resource keys (all when keys is None). Iterate; close when done."""

    store: Store
    keys: frozenset[str] | None
    maxsize: int
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False
    closed: bool = False

    def _offer(self, ev: Event) -> None:
        if self.closed or (self.keys is not None and ev.key not in self.keys):
            return
        if self.queue.qsize() >= self.maxsize:
            self.overflowed = True
            self.close()
            return
        self.queue.put_nowait(ev)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.store._subs.discard(self)
            self.queue.put_nowait(None)

    async def get(self) -> Event | None:
        """The next event, or None once closed (or overflowed)."""
        if self.closed and self.queue.empty():
            return None
        return await self.queue.get()

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            ev = await self.get()
            if ev is None:
                return
            yield ev


class Store:
    def __init__(
        self,
        persist: persistence.Persistence,
        clock: clock_mod.Clock,
        *,
        history_size: int = 10000,
        subscriber_queue: int = 20000,
        cluster: str = "",
    ) -> None:
        self._persist = persist
        self._clock = clock
        self._objs: dict[str, dict[str, dict[str, Obj]]] = {}  # key -> ns -> name -> obj
        self._uids: dict[str, tuple[str, str, str]] = {}
        self._rv = 0
        self._floor = 0  # oldest RV a watch may resume from
        self._history: deque[Event] = deque(maxlen=max(1, history_size))
        self._subs: set[Subscription] = set()
        self._lock = asyncio.Lock()
        self._subscriber_queue = subscriber_queue
        self._hooks: list[Callable[[Event], None]] = []
        self.cluster = cluster

    def add_hook(self, fn: Callable[[Event], None]) -> None:
        """Call `fn` synchronously for every committed event, before subscribers see it (and for
        every stored object as ADDED when the store opens)."""
        self._hooks.append(fn)

    async def open(self) -> None:
        rv, rows = await self._persist.open()
        for key, ns, name, obj in rows:
            self._put_mem(key, ns, name, obj)
        self._rv = rv
        self._floor = rv
        for key, _ns, _name, obj in rows:
            for hook in self._hooks:
                hook(Event(ADDED, key, obj, int(obj["metadata"].get("resourceVersion") or 0)))
        log.info("store opened %s", f"cluster={self.cluster} objects={len(rows)} rv={rv}")

    async def close(self) -> None:
        for sub in list(self._subs):
            sub.close()
        await self._persist.close()

    # reads

    @property
    def rv(self) -> int:
        return self._rv

    @property
    def floor(self) -> int:
        return self._floor

    def peek(self, key: str, namespace: str, name: str) -> Obj | None:
        """The stored object itself (read-only), or None."""
        return self._objs.get(key, {}).get(namespace, {}).get(name)

    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        obj = self.peek(key, namespace, name)
        return copy.deepcopy(obj) if obj is not None else None

    def items(self, key: str, namespace: str | None = None) -> Iterator[Obj]:
        """Stored objects (read-only), sorted by namespace then name. Safe to interleave with
        writes: objects deleted meanwhile are skipped."""
        by_ns = self._objs.get(key, {})
        spaces = [namespace] if namespace is not None else sorted(by_ns)
        for ns in spaces:
            names = by_ns.get(ns, {})
            for n in sorted(names):
                obj = names.get(n)
                if obj is not None:
                    yield obj

    def list(self, key: str, namespace: str | None = None) -> list[Obj]:
        return [copy.deepcopy(o) for o in self.items(key, namespace)]

    def resource_keys(self) -> builtins.list[str]:
        return [k for k, v in self._objs.items() if any(v.values())]

    def count(self, key: str, namespace: str | None = None) -> int:
        by_ns = self._objs.get(key, {})
        if namespace is not None:
            return len(by_ns.get(namespace, {}))
        return sum(len(v) for v in by_ns.values())

    def namespaced_items(self, namespace: str) -> Iterator[tuple[str, Obj]]:
        for key, by_ns in list(self._objs.items()):
            for name in sorted(by_ns.get(namespace, {})):
                obj = by_ns.get(namespace, {}).get(name)
                if obj is not None:
                    yield key, obj

    def by_uid(self, uid: str) -> tuple[str, str, str] | None:
        return self._uids.get(uid)

    def history_since(self, rv: int) -> builtins.list[Event]:
        """Every event after `rv`, in order; 410 Expired when `rv` is older than the kept history."""
        if rv < self._floor:
            raise errors.expired(f"too old resource version: {rv} ({self._floor})")
        out: builtins.list[Event] = []
        for ev in reversed(self._history):
            if ev.rv <= rv:
                break
            out.append(ev)
        out.reverse()
        return out

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def subscribe(self, keys: set[str] | frozenset[str] | None = None) -> Subscription:
        sub = Subscription(self, frozenset(keys) if keys is not None else None, self._subscriber_queue)
        self._subs.add(sub)
        return sub

    # writes (internal API: no validation, no admission; the REST layer does those first).
    # Each write runs in its own task under the lock: a caller cancelled halfway (a client that
    # went away) cannot leave SQLite and memory apart, nor let another writer in early.

    async def _guarded(self, coro: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_consume)
        return await asyncio.shield(task)

    async def create(self, key: str, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Store a new object: uid, creationTimestamp, generation and resourceVersion are set here."""
        return await self._guarded(self._create(key, obj, dry_run))

    async def update(
        self, key: str, obj: Obj, *, expected_rv: int | None = None, dry_run: bool = False
    ) -> Obj:
        """Replace a stored object. `expected_rv` (if given) must be the stored RV, else 409.

        generation is bumped when anything outside metadata and status changed. An object marked
        for deletion whose last finalizer is removed is deleted here (a DELETED event). A write
        that changes nothing is not stored (no new RV, no event)."""
        return await self._guarded(self._update(key, obj, expected_rv, dry_run))

    async def delete(
        self,
        key: str,
        namespace: str,
        name: str,
        *,
        expected_uid: str | None = None,
        expected_rv: int | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Remove an object now (finalizers are the caller's business); returns its last state."""
        return await self._guarded(self._delete(key, namespace, name, expected_uid, expected_rv, dry_run))

    async def delete_many(
        self, key: str, targets: builtins.list[tuple[str, str]], *, dry_run: bool = False
    ) -> builtins.list[Obj]:
        """Remove several objects in one transaction (all or nothing); missing ones are skipped."""
        return await self._guarded(self._delete_many(key, targets, dry_run))

    async def _create(self, key: str, obj: Obj, dry_run: bool) -> Obj:
        md = obj.setdefault("metadata", {})
        ns, name = md.get("namespace", "") or "", md.get("name", "")
        async with self._lock:
            if self.peek(key, ns, name) is not None:
                group, plural = meta.split_key(key)
                raise errors.already_exists(plural, group, name)
            new = copy.deepcopy(obj)
            m = new["metadata"]
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = rfc3339.format(self._clock.wall())
            m["generation"] = 1
            m.pop("deletionTimestamp", None)
            m.pop("deletionGracePeriodSeconds", None)
            if dry_run:
                m.pop("resourceVersion", None)
                return new
            done = await self._commit([Event(ADDED, key, new, 0)])
            return copy.deepcopy(done[0].obj)

    async def _update(self, key: str, obj: Obj, expected_rv: int | None, dry_run: bool) -> Obj:
        md = obj.get("metadata") or {}
        ns, name = md.get("namespace", "") or "", md.get("name", "")
        group, plural = meta.split_key(key)
        async with self._lock:
            old = self.peek(key, ns, name)
            if old is None:
                raise errors.not_found(plural, group, name)
            if expected_rv is not None and int(old["metadata"]["resourceVersion"]) != expected_rv:
                raise errors.conflict(plural, group, name)
            new = copy.deepcopy(obj)
            m = new["metadata"]
            for fixed in ("uid", "creationTimestamp"):
                m[fixed] = old["metadata"][fixed]
            if old["metadata"].get("deletionTimestamp") and not m.get("deletionTimestamp"):
                # once set, a deletion mark stays (the REST layer copies it over user bodies)
                m["deletionTimestamp"] = old["metadata"]["deletionTimestamp"]
                if "deletionGracePeriodSeconds" in old["metadata"]:
                    m["deletionGracePeriodSeconds"] = old["metadata"]["deletionGracePeriodSeconds"]
            gen = int(old["metadata"].get("generation") or 1)
            if meta.spec_of(old) != meta.spec_of(new):
                gen += 1
            m["generation"] = gen
            if dry_run:
                m["resourceVersion"] = old["metadata"]["resourceVersion"]
                return new
            # a deletion mark without finalizers (and without a grace period to wait out) is a delete
            gone = m.get("deletionTimestamp") and not meta.finalizers_pending(key, new)
            etype = DELETED if gone and not (m.get("deletionGracePeriodSeconds") or 0) > 0 else MODIFIED
            m["resourceVersion"] = old["metadata"]["resourceVersion"]
            if etype == MODIFIED and new == old:
                return copy.deepcopy(old)  # a no-op write: no new RV, no event (as the API server)
            done = await self._commit([Event(etype, key, new, 0)])
            return copy.deepcopy(done[0].obj)

    async def _delete(
        self,
        key: str,
        namespace: str,
        name: str,
        expected_uid: str | None,
        expected_rv: int | None,
        dry_run: bool,
    ) -> Obj:
        group, plural = meta.split_key(key)
        async with self._lock:
            old = self.peek(key, namespace, name)
            if old is None:
                raise errors.not_found(plural, group, name)
            meta.check_preconditions(old, plural, group, name, expected_uid, expected_rv)
            if dry_run:
                return copy.deepcopy(old)
            ev = await self._commit([Event(DELETED, key, old, 0)])
            return copy.deepcopy(ev[0].obj)

    async def _delete_many(
        self, key: str, targets: builtins.list[tuple[str, str]], dry_run: bool
    ) -> builtins.list[Obj]:
        async with self._lock:
            events = [
                Event(DELETED, key, o, 0) for ns, n in targets if (o := self.peek(key, ns, n)) is not None
            ]
            if dry_run or not events:
                return [copy.deepcopy(e.obj) for e in events]
            done = await self._commit(events)
            return [copy.deepcopy(e.obj) for e in done]

    async def _commit(self, events: builtins.list[Event]) -> builtins.list[Event]:
        """Assign RVs, persist in one transaction, then apply to memory and notify. Lock held."""
        rv = self._rv
        stamped: builtins.list[Event] = []
        puts: builtins.list[persistence.Row] = []
        deletes: builtins.list[persistence.Key] = []
        for ev in events:
            rv += 1
            obj = dict(ev.obj)
            obj["metadata"] = dict(obj["metadata"], resourceVersion=str(rv))
            m = obj["metadata"]
            ns, name = m.get("namespace", "") or "", m["name"]
            if ev.type == DELETED:
                deletes.append((ev.key, ns, name))
            else:
                puts.append((ev.key, ns, name, obj))
            stamped.append(Event(ev.type, ev.key, obj, rv, self.peek(ev.key, ns, name)))
        try:
            await self._persist.write(rv, puts, deletes)
        except Exception as e:
            log.exception("persisting failed cluster=%s", self.cluster)
            raise errors.ApiError(500, f"storage error: {e}") from e
        self._rv = rv
        for ev in stamped:
            m = ev.obj["metadata"]
            ns, name = m.get("namespace", "") or "", m["name"]
            if ev.type == DELETED:
                self._del_mem(ev.key, ns, name)
            else:
                self._put_mem(ev.key, ns, name, ev.obj)
            if len(self._history) == self._history.maxlen:
                self._floor = self._history[0].rv
            self._history.append(ev)
        for ev in stamped:
            for hook in self._hooks:
                try:
                    hook(ev)
                except Exception:
                    log.exception("store hook failed cluster=%s key=%s", self.cluster, ev.key)
        for sub in list(self._subs):
            for ev in stamped:
                sub._offer(ev)
        return stamped

    def _put_mem(self, key: str, ns: str, name: str, obj: Obj) -> None:
        self._objs.setdefault(key, {}).setdefault(ns, {})[name] = obj
        uid = obj["metadata"].get("uid")
        if uid:
            self._uids[uid] = (key, ns, name)

    def _del_mem(self, key: str, ns: str, name: str) -> None:
        by_ns = self._objs.get(key, {})
        obj = by_ns.get(ns, {}).pop(name, None)
        if obj is not None:
            self._uids.pop(obj["metadata"].get("uid", ""), None)
        if ns in by_ns and not by_ns[ns]:
            del by_ns[ns]


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a write whose caller went away (so it is not reported as lost)."""
    if not task.cancelled():
        task.exception()
