"""The push queue: debounced requests in, one immutable PushContext per push, fanned out to proxies.

`enqueue()` is what the registry (through the composition root) calls on every change: a full
request for service/config changes, an EDS-only one (`full=False, eds_hosts=...`) when only
endpoints changed. After debouncing, one snapshot is taken from the `ConfigSource` and handed to
the `PushTarget` (the ADS server), which queues it on every connection; each connection then
generates and sends with bounded concurrency and coalesces pushes that arrive while it is busy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Protocol

from meshplane.push import context, debounce, metrics
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import logging as rlog
from meshplane.runtime import rfc3339, tasks

log = logging.getLogger(__name__)


class PushTarget(Protocol):
    def push(self, ctx: context.PushContext, request: context.PushRequest) -> int:
        """Queue the push on every connection; return how many connections got it."""
        ...


class PushQueue:
    def __init__(
        self,
        source: context.ConfigSource,
        target: PushTarget,
        *,
        metrics: metrics.Metrics,
        clock: clock_mod.Clock | None = None,
        debounce_options: debounce.DebounceOptions | None = None,
    ) -> None:
        self._source = source
        self._target = target
        self._metrics = metrics
        self._clock = clock or clock_mod.SystemClock()
        self._debouncer = debounce.Debouncer(
            debounce_options or debounce.DebounceOptions(), self._debounced, self._clock
        )
        self._counter = 0
        self._current: context.PushContext | None = None
        self._task: asyncio.Task[None] | None = None
        self._pushed = asyncio.Condition()

    @property
    def current(self) -> context.PushContext | None:
        """The PushContext of the latest push (what /debug/configz shows)."""
        return self._current

    @property
    def pushes(self) -> int:
        """How many pushes have been started (tests and benchmarks wait on it)."""
        return self._counter

    def enqueue(self, request: context.PushRequest) -> None:
        """Add a change to the current debounce window (never blocks)."""
        self._debouncer.add(self._stamp(request))

    def _stamp(self, request: context.PushRequest) -> context.PushRequest:
        if not request.start:
            request = dataclasses.replace(request, start=self._clock.monotonic())
        for reason in request.reasons or ("unknown",):
            self._metrics.push_triggers.labels(type=reason).inc()
        return request

    async def start(self) -> None:
        if self._task is None:
            self._task = tasks.guarded(self._debouncer.run(), "push-debounce")

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None

    async def push_now(self, request: context.PushRequest) -> context.PushContext:
        """Snapshot and fan out immediately, bypassing the debounce (the first push at startup)."""
        return await self._push(self._stamp(request))

    async def wait_pushes(self, count: int) -> None:
        """Wait until at least `count` pushes have been started."""
        async with self._pushed:
            await self._pushed.wait_for(lambda: self._counter >= count)

    async def _debounced(self, request: context.PushRequest, events: int, waited: float) -> None:
        self._metrics.debounce_time.observe(waited)
        try:
            await self._push(request)
        except Exception:
            # A failed snapshot must not kill the debounce loop: log it and wait for the next change.
            log.exception("push failed %s", rlog.kv(full=request.full, events=events))

    def _next_version(self) -> str:
        self._counter += 1
        stamp = rfc3339.format(self._clock.wall())
        return f"{stamp}/{self._counter}"

    async def _push(self, request: context.PushRequest) -> context.PushContext:
        version = self._next_version()
        t0 = time.perf_counter()
        ctx = self._source.snapshot(version)
        self._metrics.context_init.observe(time.perf_counter() - t0)
        self._current = ctx
        n = self._target.push(ctx, request)
        log.info(
            "push %s",
            rlog.kv(
                version=version,
                full=request.full,
                eds_hosts=len(request.eds_hosts) if not request.full else None,
                services=len(ctx.services),
                connections=n,
                reasons=",".join(sorted(request.reasons)) or "unknown",
            ),
        )
        async with self._pushed:
            self._pushed.notify_all()
        return ctx
