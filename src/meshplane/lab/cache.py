"""A list+watch cache of one kind in one cluster, holding objects as JSON dicts.

The node runtime's controllers read these caches and are woken by their change callbacks, as
Kubernetes' controllers use informers. A 410 (history expired) relists; an unreachable API server
is retried with backoff while the cache keeps serving; a relist is diffed against the cache so the
callbacks see every change. (meshplane.kube.informer does the same for the control plane with
typed objects; the lab works on dicts because it reads Pod specs field by field.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx2
import lightkube
from lightkube.core import exceptions as lk_exceptions
from lightkube.core import resource as lk_resource

from meshplane.runtime import backoff as backoff_mod
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
# (old, new): old None for an addition, new None for a deletion
Handler = Callable[[Obj | None, Obj | None], None]


def key_of(obj: Obj) -> Key:
    m = obj.get("metadata") or {}
    return (str(m.get("namespace") or ""), str(m.get("name") or ""))


def to_dict(obj: Any) -> Obj:
    d = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return d if isinstance(d, dict) else {}


class WatchCache:
    """Call `run()` as a task; read with `get`/`items`; be told of changes through handlers."""

    def __init__(
        self,
        client: lightkube.AsyncClient,
        resource: Any,
        cluster: str,
        *,
        watch_timeout: int = 240,
    ) -> None:
        self.client = client
        self.resource = resource
        self.cluster = cluster
        self.kind = resource._api_info.resource.kind
        self.watch_timeout = watch_timeout
        self._cache: dict[Key, Obj] = {}
        self._handlers: list[Handler] = []
        self._rv = ""
        self._synced = asyncio.Event()
        self._backoff = backoff_mod.Backoff(initial=0.2, maximum=5.0)

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def get(self, namespace: str, name: str) -> Obj | None:
        return self._cache.get((namespace, name))

    def items(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return list(self._cache.values())
        return [o for (ns, _), o in self._cache.items() if ns == namespace]

    def _emit(self, old: Obj | None, new: Obj | None) -> None:
        for h in self._handlers:
            try:
                h(old, new)
            except Exception:
                log.exception("cache handler failed %s", kv(cluster=self.cluster, kind=self.kind))

    def _apply(self, etype: str, obj: Obj) -> None:
        key = key_of(obj)
        old = self._cache.get(key)
        if etype == "DELETED":
            if old is not None:
                del self._cache[key]
                self._emit(old, None)
            return
        old_rv = (old or {}).get("metadata", {}).get("resourceVersion")
        if old is not None and old_rv == obj.get("metadata", {}).get("resourceVersion"):
            return
        self._cache[key] = obj
        self._emit(old, obj)

    def _scope(self) -> dict[str, str]:
        if issubclass(self.resource, lk_resource.NamespacedResource):
            return {"namespace": "*"}
        return {}

    async def _list(self) -> None:
        it = self.client.list(self.resource, chunk_size=500, **self._scope())
        fresh: dict[Key, Obj] = {}
        async for obj in it:
            d = to_dict(obj)
            fresh[key_of(d)] = d
        self._rv = str(getattr(it, "_resourceVersion", None) or "")
        for key, old in list(self._cache.items()):
            if key not in fresh:
                del self._cache[key]
                self._emit(old, None)
        for d in fresh.values():
            self._apply("MODIFIED", d)

    async def _watch(self) -> None:
        stream = self.client.watch(
            self.resource,
            resource_version=self._rv or None,
            server_timeout=self.watch_timeout,
            **self._scope(),
        )
        try:
            async for etype, obj in stream:
                d = to_dict(obj)
                rv = str((d.get("metadata") or {}).get("resourceVersion") or "")
                if etype != "BOOKMARK":
                    self._apply(etype, d)
                self._rv = rv or self._rv
                self._backoff.reset()
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def run(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    if not self._synced.is_set():
                        log.info(
                            "cache synced %s", kv(cluster=self.cluster, kind=self.kind, n=len(self._cache))
                        )
                    self._synced.set()
                await self._watch()
            except asyncio.CancelledError:
                raise
            except lk_exceptions.ApiError as e:
                code = getattr(e.status, "code", None)
                need_list = True
                if code == 410:
                    continue
                await self._failed(f"API error {code}: {getattr(e.status, 'message', e)}")
            except (httpx2.HTTPError, OSError, lk_exceptions.ConfigError) as e:
                need_list = True
                await self._failed(f"{type(e).__name__}: {e}")
            except Exception as e:  # an object lightkube cannot decode: keep serving, relist later
                log.exception("unexpected watch failure %s", kv(cluster=self.cluster, kind=self.kind))
                need_list = True
                await self._failed(f"{type(e).__name__}: {e}")

    async def _failed(self, reason: str) -> None:
        delay = self._backoff.next()
        log.warning(
            "cannot watch, retrying %s",
            kv(cluster=self.cluster, kind=self.kind, retry_in=f"{delay:.1f}s", error=reason),
        )
        await asyncio.sleep(delay)


class Trigger:
    """Wakes a reconcile loop: `fire()` from any handler, `await wait(timeout)` in the loop.
    Notifications that arrive while the loop is busy are merged into its next round."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self, *_: object) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - a resync period, not a deadline
        """True when fired, False when `timeout` passed (a periodic resync)."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True


async def reconcile_loop(
    name: str, cluster: str, trigger: Trigger, step: Callable[[], Any], resync: float = 10.0
) -> None:
    """Run `await step()` whenever `trigger` fires, and every `resync` seconds; a failed step is
    logged and retried with backoff (the next event or the retry, whichever comes first)."""
    backoff = backoff_mod.Backoff(initial=0.2, maximum=5.0)
    while True:
        try:
            await step()
            backoff.reset()
            wait = resync
        except asyncio.CancelledError:
            raise
        except Exception as e:
            wait = backoff.next()
            log.warning(
                "%s failed, retrying %s", name, kv(cluster=cluster, retry_in=f"{wait:.1f}s", error=repr(e))
            )
        await trigger.wait(wait)
