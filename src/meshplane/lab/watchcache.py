"""The lab controllers' view of one kind in one cluster: JSON dicts and (old, new) handlers.

Listing, watching, relisting on 410, periodic resync and backoff while the API server is away are
`meshplane.kube.informer`'s (the control plane's informer); this adapter only turns its typed
events into the dict-level callbacks the node runtime's controllers are written against.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import lightkube

from meshplane.kube import informer
from meshplane.runtime import backoff as backoff_mod
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

Key = informer.Key
# (old, new): old None for an addition, new None for a deletion
Handler = Callable[[Obj | None, Obj | None], None]

key_of = informer.key_of
to_dict = informer.as_dict


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
        self.resource = resource
        self.cluster = cluster
        self.kind = resource._api_info.resource.kind
        self._informer: informer.Informer[Obj] = informer.Informer(
            client,
            resource,
            cluster_id=cluster,
            watch_timeout=watch_timeout,
            backoff=backoff_mod.Backoff(initial=0.2, maximum=5.0),
            transform=informer.as_dict,
        )

    def add_handler(self, handler: Handler) -> None:
        def adapt(event: informer.Event[Obj]) -> None:
            if event.type == informer.EventType.ADDED:
                handler(None, event.obj)
            elif event.type == informer.EventType.DELETED:
                handler(event.old or event.obj, None)
            else:
                handler(event.old, event.obj)

        self._informer.add_handler(adapt)

    @property
    def synced(self) -> bool:
        return self._informer.synced

    async def wait_synced(self) -> None:
        await self._informer.wait_synced()

    def get(self, namespace: str, name: str) -> Obj | None:
        return self._informer.get(name, namespace)

    def items(self, namespace: str | None = None) -> list[Obj]:
        objs = self._informer.items()
        if namespace is None:
            return objs
        return [o for o in objs if key_of(o)[0] == namespace]

    async def run(self) -> None:
        await self._informer.run()


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
