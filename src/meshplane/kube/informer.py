"""Informer: list + watch + local cache for one kind in one cluster.

The cache keeps serving while the cluster is unreachable; reconnects back off (capped,
exponential); a 410 (history expired) triggers a relist; a periodic full relist repairs anything a
missed watch event left behind (Istio once kept a stale endpoint for 24 h: istio/istio#54997).
A relist is diffed against the cache, so handlers see ADDED/MODIFIED/DELETED as if they had
watched all along.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import httpx2
import lightkube
from lightkube.core import exceptions as lk_exceptions
from lightkube.core import resource as lk_resource

from meshplane.kube import errors
from meshplane.runtime import backoff as backoff_mod
from meshplane.runtime import clock as clock_mod
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

T = TypeVar("T")
Key = tuple[str, str]  # (namespace or "", name)


class EventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class Event(Generic[T]):
    type: EventType
    obj: T
    old: T | None = None


Handler = Callable[[Event[Any]], None]


def key_of(obj: Any) -> Key:
    """(namespace, name) of a lightkube object or of a plain JSON dict."""
    if isinstance(obj, dict):
        meta = obj.get("metadata") or {}
        return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
    meta = obj.metadata
    return (meta.namespace or "", meta.name)


def _rv(obj: Any) -> str:
    if isinstance(obj, dict):
        return str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return str(obj.metadata.resourceVersion or "")


def as_dict(obj: Any) -> dict[str, Any]:
    """A `transform` for informers that work on plain JSON dicts (the lab's controllers do)."""
    d = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return d if isinstance(d, dict) else {}


class Informer(Generic[T]):
    """Watches one resource type; call `run()` as a task, read with `get`/`items`, react with handlers."""

    def __init__(
        self,
        client: lightkube.AsyncClient,
        resource: type[T],
        *,
        cluster_id: str,
        namespace: str | None = None,
        labels: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
        resync_period: float = 300.0,
        watch_timeout: int = 290,
        backoff: backoff_mod.Backoff | None = None,
        clock: clock_mod.Clock | None = None,
        missing_ok: bool = False,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.client = client
        # for CRD kinds that may not be installed yet: a 404 means "none", not an outage
        self.missing_ok = missing_ok
        # what the cache holds: the client's objects as they come, or e.g. `as_dict` of them
        self._transform = transform or (lambda o: o)
        self.resource = resource
        self.cluster_id = cluster_id
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.resync_period = resync_period
        self.watch_timeout = watch_timeout
        self._backoff = backoff or backoff_mod.Backoff(initial=0.2, maximum=10.0)
        self._clock = clock or clock_mod.SystemClock()
        self._cache: dict[Key, T] = {}
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self._rv = ""
        self.connected = False
        self.relists = 0
        self.last_error = ""

    @property
    def kind(self) -> str:
        return getattr(self.resource, "__name__", str(self.resource))

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, name: str, namespace: str | None = None) -> T | None:
        return self._cache.get((namespace or "", name))

    def items(self) -> list[T]:
        return list(self._cache.values())

    def _emit(self, event: Event[T]) -> None:
        for handler in self._handlers:
            try:
                handler(event)
            except Exception:
                log.exception(
                    "informer handler failed %s",
                    kv(cluster=self.cluster_id, kind=self.kind, event=event.type, key=key_of(event.obj)),
                )

    def _apply(self, etype: str, obj: T) -> None:
        key = key_of(obj)
        old = self._cache.get(key)
        if etype == "DELETED":
            if old is not None:
                del self._cache[key]
                self._emit(Event(EventType.DELETED, obj, old))
            return
        self._cache[key] = obj
        if old is None:
            self._emit(Event(EventType.ADDED, obj))
        elif _rv(old) != _rv(obj):
            self._emit(Event(EventType.MODIFIED, obj, old))

    def _scope(self) -> dict[str, str]:
        """lightkube's namespace argument: the given one, all namespaces, or none for cluster kinds."""
        if not issubclass(self.resource, lk_resource.NamespacedResource):  # type: ignore[arg-type]
            return {}
        return {"namespace": self.namespace or "*"}

    def _clear(self) -> None:
        for key, old in list(self._cache.items()):
            del self._cache[key]
            self._emit(Event(EventType.DELETED, old, old))

    async def _list(self) -> None:
        it = self.client.list(
            self.resource,  # type: ignore[call-overload]
            labels=self.labels,
            fields=self.fields,
            chunk_size=500,
            **self._scope(),
        )
        fresh: dict[Key, T] = {}
        async for raw in it:
            obj = self._transform(raw)
            fresh[key_of(obj)] = obj
        rv = str(getattr(it, "_resourceVersion", None) or "")
        for key, old in list(self._cache.items()):
            if key not in fresh:
                del self._cache[key]
                self._emit(Event(EventType.DELETED, old, old))
        for obj in fresh.values():
            self._apply("MODIFIED", obj)
        self._rv = rv
        self.relists += 1

    async def _watch(self, deadline: float) -> None:
        stream = self.client.watch(
            self.resource,  # type: ignore[call-overload]
            labels=self.labels,
            fields=self.fields,
            resource_version=self._rv or None,
            server_timeout=self.watch_timeout,
            **self._scope(),
        )
        remaining = deadline - self._clock.monotonic()
        if remaining <= 0:
            return
        try:
            async with asyncio.timeout(remaining):
                async for etype, raw in stream:
                    if etype == "BOOKMARK":
                        self._rv = _rv(raw) or self._rv
                        continue
                    obj = self._transform(raw)
                    self._apply(etype, obj)
                    self._rv = _rv(obj) or self._rv
                    self._backoff.reset()
        except TimeoutError:
            return  # time for the periodic relist
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def run(self) -> None:
        """List, then watch; relist on 410 and every resync_period; back off while unreachable."""
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    if not self._synced.is_set():
                        self._synced.set()
                        log.info(
                            "informer synced %s",
                            kv(cluster=self.cluster_id, kind=self.kind, objects=len(self._cache)),
                        )
                    self._mark_connected()
                deadline = self._clock.monotonic() + self.resync_period
                await self._watch(deadline)
                need_list = self._clock.monotonic() >= deadline
            except asyncio.CancelledError:
                raise
            except lk_exceptions.ApiError as e:
                if errors.is_gone(e):
                    log.info("watch expired, relisting %s", kv(cluster=self.cluster_id, kind=self.kind))
                    need_list = True
                    continue
                if errors.is_not_found(e) and self.missing_ok:
                    # the kind is not served (yet): an empty, synced cache; look again later
                    self._clear()
                    self._synced.set()
                    self._mark_connected()
                    await self._clock.sleep(self._backoff.next())
                    need_list = True
                    continue
                await self._failed(f"API error {errors.status_code(e)}: {getattr(e.status, 'message', e)}")
                need_list = True
            except (
                httpx2.HTTPError,
                OSError,
                lk_exceptions.ConfigError,
                lk_exceptions.LoadResourceError,
            ) as e:
                await self._failed(f"{type(e).__name__}: {e}")
                # relist after any outage: it proves the cluster is back and repairs missed events
                need_list = True
            except Exception as e:  # e.g. an object the client cannot decode: keep serving, retry
                log.exception("unexpected list/watch failure %s", kv(cluster=self.cluster_id, kind=self.kind))
                await self._failed(f"{type(e).__name__}: {e}")
                need_list = True

    def _mark_connected(self) -> None:
        if not self.connected:
            self.connected = True
            self.last_error = ""

    async def _failed(self, reason: str) -> None:
        delay = self._backoff.next()
        if self.connected or reason != self.last_error:
            log.warning(
                "informer cannot reach cluster, serving from cache %s",
                kv(cluster=self.cluster_id, kind=self.kind, retry_in=f"{delay:.1f}s", error=reason),
            )
        self.connected = False
        self.last_error = reason
        await self._clock.sleep(delay)
