"""Poll a condition with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError, TimeoutError):
    """The condition did not hold in time (an AssertionError for pytest, a TimeoutError for callers)."""


async def wait_for(
    cond: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,  # noqa: ASYNC109 -- a polling deadline, not a cancellation scope
    interval: float = 0.05,
    message: str = "condition",
    *,
    what: str | None = None,
) -> T:
    """Return the first truthy value of `cond()` (sync or async); fail after `timeout` seconds.
    An AssertionError raised by `cond` counts as "not yet"."""
    label = what or message
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = cond()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value  # type: ignore[return-value]
            last = value
        except AssertionError as e:
            last = e
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {label}; last={last!r}")
        await asyncio.sleep(interval)


def wait_for_sync(
    cond: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, message: str = "condition"
) -> T:
    """Blocking variant for synchronous tests."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {message}; last={value!r}")
        time.sleep(interval)


def wait_until(
    cond: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> T:
    """The dev cluster tests' name for wait_for_sync."""
    return wait_for_sync(cond, timeout, interval, what)
