"""Guarded background tasks: a dead task is logged; shutdown runs last-started-first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


def guarded(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Start `coro` as a task whose unexpected death is logged instead of lost."""
    task = asyncio.create_task(coro, name=name)

    def _done(t: asyncio.Task[Any]) -> None:
        if t.cancelled():
            return
        exc = t.exception()
        if exc is not None:
            log.error("task died task=%s error=%r", name, exc, exc_info=exc)

    task.add_done_callback(_done)
    return task


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task and wait until it has finished."""
    if task is None or task.done():
        if task is not None and not task.cancelled():
            with contextlib.suppress(BaseException):
                task.exception()
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class TaskGroup:
    """Named guarded tasks plus stop callbacks, stopped in reverse start order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stack: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = guarded(coro, f"{self.name}/{name}")
        self._tasks.append(task)
        self._stack.append(lambda: cancel(task))
        return task

    def on_stop(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._stack.append(fn)

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        return list(self._tasks)

    async def stop(self) -> None:
        while self._stack:
            fn = self._stack.pop()
            try:
                await fn()
            except Exception:
                log.exception("stop step failed group=%s", self.name)
        self._tasks.clear()
