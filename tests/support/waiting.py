"""Poll a condition with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(
    cond: Callable[[], T | Awaitable[T]], within: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Return the first truthy value of `cond()` (sync or async); fail after `within` real seconds."""
    deadline = time.monotonic() + within
    last: T | None = None
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        last = value  # type: ignore[assignment]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or cond!r} (last={last!r})")
        await asyncio.sleep(interval)
