"""Container processes: started in their own session, logged to a file, recorded in a pid file,
and stopped only by their PID.

stdout and stderr are pipes the node runtime copies into the container's log file in the CRI
logging format (`containerlog`), as a container runtime's shim does; the file of the previous
instance is kept as the previous log.

A pid file holds `PID STARTTIME` (the process's start time in clock ticks since boot, from
/proc/PID/stat), so a later sweep (`lab down`, a restarted node runtime) stops the process it
recorded and never an unrelated one that reused the PID. Children get PR_SET_PDEATHSIG=SIGTERM so
that they are told to stop if the node runtime dies without cleaning up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from meshplane.lab.node import containerlog
from meshplane.runtime import processes

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


_prctl: list[object] = []  # libc's prctl, looked up in the parent (never dlopen between fork and exec)


def _pdeathsig_fn() -> object:
    if not _prctl:
        try:
            _prctl.append(ctypes.CDLL(None, use_errno=True).prctl)
        except (OSError, AttributeError):
            _prctl.append(None)
    fn = _prctl[0]

    def set_pdeathsig() -> None:  # runs in the child between fork and exec
        if fn is not None:
            fn(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)  # type: ignore[operator]

    return set_pdeathsig


def read_pid_file(path: Path) -> tuple[int, int] | None:
    try:
        fields = path.read_text().split()
        return int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return None


def write_pid_file(path: Path, pid: int) -> None:
    started = processes.start_time(pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{pid} {started or 0}\n")
    os.replace(tmp, path)


def signal_recorded(path: Path, sig: int) -> bool:
    """Send `sig` to the process a pid file records, if it is still that process."""
    rec = read_pid_file(path)
    if rec is None or not processes.alive(*rec):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(rec[0], sig)
        return True
    return False


_pumps: set[asyncio.Task[None]] = set()  # log pumps outlive spawn(); kept until their EOF


async def spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path, pid_path: Path
) -> asyncio.subprocess.Process:
    """Start a container's process; its stdout and stderr go to `log_path` (CRI format)."""

    def open_log() -> int:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        containerlog.rotate(log_path)
        return os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    fd = await asyncio.to_thread(open_log)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            cwd=str(cwd),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_pdeathsig_fn(),  # type: ignore[arg-type]
        )
    except BaseException:
        os.close(fd)
        raise
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        asyncio.create_task(containerlog.pump(proc.stdout, "stdout", fd, log_path)),
        asyncio.create_task(containerlog.pump(proc.stderr, "stderr", fd, log_path)),
    ]
    closer = asyncio.create_task(_close_after(pumps, fd))
    _pumps.add(closer)
    closer.add_done_callback(_pumps.discard)
    await asyncio.to_thread(write_pid_file, pid_path, proc.pid)
    return proc


async def _close_after(pumps: list[asyncio.Task[None]], fd: int) -> None:
    try:
        for r in await asyncio.gather(*pumps, return_exceptions=True):
            if isinstance(r, Exception):
                log.warning("container log copy failed error=%s", r)
    finally:
        os.close(fd)


async def stop(proc: asyncio.subprocess.Process, grace: float, name: str = "") -> int | None:
    """SIGTERM by PID, SIGKILL after `grace` seconds; the exit code."""
    if await processes.stop(proc, grace):
        log.info("process did not stop in %.0fs, killing pid=%d name=%s", grace, proc.pid, name)
    return proc.returncode


def sweep(root: Path) -> list[int]:
    """SIGKILL every still-running process recorded by a `*.pid` file under `root` (left by a node
    runtime that died without stopping its pods) and remove the files. Blocking: use a thread."""
    killed: list[int] = []
    if not root.is_dir():
        return killed
    for path in root.rglob("*.pid"):
        rec = read_pid_file(path)
        if rec is not None and processes.alive(*rec):
            with contextlib.suppress(ProcessLookupError):
                os.kill(rec[0], signal.SIGKILL)
                killed.append(rec[0])
        with contextlib.suppress(OSError):
            path.unlink()
    return killed
