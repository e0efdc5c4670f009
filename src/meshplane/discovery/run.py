"""Running `meshplane discovery` in the foreground: tune the garbage collector, start the control
plane, serve until SIGINT or SIGTERM, then stop it in order."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import Any

from meshplane.discovery import app, options
from meshplane.runtime import signals, tasks

# Many long-lived objects (caches, protos) make CPython's automatic collections long pauses during
# pushes: collect less often, and freeze what exists once the first sync is done.
GC_THRESHOLDS = (50_000, 50, 100)


def run(opts: options.Options) -> None:
    """Run the control plane until SIGINT or SIGTERM (blocking; owns the event loop)."""
    asyncio.run(serve(opts))


async def serve(opts: options.Options) -> None:
    """Start the control plane, wait for SIGINT or SIGTERM, stop it."""
    server = app.Discovery(opts)
    gc.set_threshold(*GC_THRESHOLDS)
    freeze: asyncio.Task[Any] | None = None
    with signals.StopOnSignal() as stop:
        try:
            await server.start()
            freeze = tasks.guarded(_freeze_when_ready(server), "discovery/gc-freeze")
            await stop.wait()
        finally:
            await tasks.cancel(freeze)
            with contextlib.suppress(Exception):
                await server.stop()


async def _freeze_when_ready(server: app.Discovery) -> None:
    await server.first_push_done.wait()
    gc.collect()
    gc.freeze()
