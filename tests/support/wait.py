"""Poll for a condition with a deadline (tests never sleep a fixed time to wait)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_for(
    cond: Callable[[], Any],
    timeout: float = 10.0,  # noqa: ASYNC109
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Await until `cond()` (sync or async) returns something truthy and return it (TimeoutError after
    `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = cond()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last value {last!r})")
        await asyncio.sleep(interval)


def wait_until(
    cond: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> T:
    """Blocking variant for synchronous tests."""
    deadline = time.monotonic() + timeout
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last value {last!r})")
        time.sleep(interval)
