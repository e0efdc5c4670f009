"""A keyed work queue for controllers: a key is queued once however often it is added, and a
failed key comes back after a delay that grows with its consecutive failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from meshplane.runtime import clock as clock_mod

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self, delay_for: Callable[[int], float], clock: clock_mod.Clock | None = None) -> None:
        """`delay_for(n)` is the wait before the n-th retry (n starts at 1)."""
        self._delay_for = delay_for
        self._clock = clock or clock_mod.SystemClock()
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: set[asyncio.Task[None]] = set()

    def add(self, key: K) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    async def get(self) -> K:
        key = await self._queue.get()
        self._queued.discard(key)
        return key

    def forget(self, key: K) -> None:
        """The key was handled: its next failure starts the schedule again."""
        self._failures.pop(key, None)

    def retry(self, key: K) -> float:
        """Queue the key again after its next delay; returns that delay."""
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        delay = self._delay_for(n)
        task = asyncio.create_task(self._later(key, delay))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
        return delay

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    async def _later(self, key: K, delay: float) -> None:
        await self._clock.sleep(delay)
        self.add(key)

    async def close(self) -> None:
        for t in list(self._timers):
            t.cancel()
        for t in list(self._timers):
            with contextlib.suppress(asyncio.CancelledError):
                await t
