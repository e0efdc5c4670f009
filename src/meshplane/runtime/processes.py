"""Stopping a child process: SIGTERM, a grace period, then SIGKILL.

`stop` is for an asyncio child we hold; `stop_pid` (blocking) for a process known only by a PID
and the start time recorded with it, so that a PID the kernel reused for another process is never
signalled. Signals go by PID (os.kill), and a process that is already gone is not an error."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path


async def stop(proc: asyncio.subprocess.Process, grace: float) -> bool:
    """SIGTERM `proc`, wait up to `grace` seconds, then SIGKILL it and reap it.

    True when it had to be killed; a process that already exited is left alone."""
    if proc.returncode is not None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), max(grace, 0.0))
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        return True
    return False


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int, started: int | None) -> bool:
    """The recorded process still runs (same PID and start time) and is not a zombie."""
    if started is None or start_time(pid) != started:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_pid(pid: int, started: int | None, grace: float) -> None:
    """SIGTERM the process `pid` if it is still the one started at `started`, poll up to `grace`
    seconds for it to go (reaping it when it is our child), then SIGKILL it. Blocking."""
    if not alive(pid, started):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid, started):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if alive(pid, started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
