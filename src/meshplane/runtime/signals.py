"""Serve until SIGTERM or SIGINT: the loop's handlers for both set one event.

with signals.StopOnSignal() as stop:   # handlers installed (inside a running loop)
    ...
    await stop.wait()
                                       # handlers removed: the default actions again
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from types import TracebackType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopOnSignal:
    """Installs loop handlers for SIGTERM and SIGINT that set `event`, until `close()`."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self.event.set)

    async def wait(self) -> None:
        """Until SIGTERM or SIGINT arrives (at once if one already did)."""
        await self.event.wait()

    def close(self) -> None:
        """Remove the handlers (idempotent)."""
        for sig in STOP_SIGNALS:
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(sig)

    def __enter__(self) -> StopOnSignal:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
