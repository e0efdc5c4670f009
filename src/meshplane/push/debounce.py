"""Debounce: merge bursts of change events into one push request (Istio's PILOT_DEBOUNCE_*).

A push starts once no event has arrived for `after` seconds (the quiet period), or once `max`
seconds have passed since the first event of the burst, whichever comes first. Only one push runs
at a time; events arriving while it runs are merged into the next one. EDS-only requests are
debounced like the others (Istio's PILOT_ENABLE_EDS_DEBOUNCE default); merging an EDS-only request
with a full one gives a full one (`PushRequest.merge`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from meshplane.push import context
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import durations
from meshplane.runtime import logging as rlog

log = logging.getLogger(__name__)

# (merged request, number of events merged, seconds since the first of them)
PushFn = Callable[[context.PushRequest, int, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DebounceOptions:
    after: float = 0.1  # PILOT_DEBOUNCE_AFTER
    max: float = 10.0  # PILOT_DEBOUNCE_MAX

    def __post_init__(self) -> None:
        if self.after < 0 or self.max < 0:
            raise ValueError(f"debounce durations must not be negative (after={self.after}, max={self.max})")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DebounceOptions:
        """Read PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX (Go durations such as `100ms`, `10s`)."""
        e = os.environ if env is None else env
        after = parse_duration(e.get("PILOT_DEBOUNCE_AFTER", "100ms"), "PILOT_DEBOUNCE_AFTER")
        max_ = parse_duration(e.get("PILOT_DEBOUNCE_MAX", "10s"), "PILOT_DEBOUNCE_MAX")
        return cls(after=after, max=max_)


# Closer than this to the deadline counts as there: a sleep that short may not advance the clock.
_RESOLUTION = 1e-3


def parse_duration(text: str, what: str = "duration") -> float:
    """A non-negative Go duration (`100ms`, `1m30s`, `2.5s`) in seconds; a bare number means seconds."""
    try:
        value = durations.parse(text)
    except ValueError as e:
        raise ValueError(f"{what}: {text!r} is not a duration like 100ms, 10s or 1m30s") from e
    if value < 0:
        raise ValueError(f"{what}: {text!r} must be a non-negative duration")
    return value


class Debouncer:
    """Collects requests with `add()`; `run()` calls `push(merged, events, waited)` once per burst."""

    def __init__(self, options: DebounceOptions, push: PushFn, clock: clock_mod.Clock) -> None:
        self.options = options
        self._push = push
        self._clock = clock
        self._pending: context.PushRequest | None = None
        self._events = 0
        self._first = 0.0
        self._last = 0.0
        self._wake = asyncio.Event()

    def add(self, request: context.PushRequest) -> None:
        now = self._clock.monotonic()
        if self._pending is None:
            self._pending = request
            self._first = now
        else:
            self._pending = self._pending.merge(request)
        self._events += 1
        self._last = now
        self._wake.set()

    @property
    def pending(self) -> context.PushRequest | None:
        return self._pending

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending is None:
                continue
            await self._wait_quiet()
            request, events, first = self._pending, self._events, self._first
            self._pending, self._events = None, 0
            if request is None:
                continue
            waited = self._clock.monotonic() - first
            log.debug("debounced push %s", rlog.kv(full=request.full, events=events, waited=f"{waited:.3f}s"))
            await self._push(request, events, waited)

    async def _wait_quiet(self) -> None:
        """Sleep until the burst has been quiet for `after`, or `max` has passed since it began."""
        while True:
            now = self._clock.monotonic()
            quiet_left = self.options.after - (now - self._last)
            max_left = self.options.max - (now - self._first)
            left = min(quiet_left, max_left)
            if left <= _RESOLUTION:
                return
            await self._clock.sleep(left)
