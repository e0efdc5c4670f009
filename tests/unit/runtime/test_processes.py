import asyncio
import signal
import subprocess
import sys
import time

import pytest

from meshplane.runtime import processes
from tests.support import wait

# A child that prints `ready` once its SIGTERM disposition is set, then sleeps.
_CHILD = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.{}); print('ready', flush=True); "
    "time.sleep(60)"
)


@pytest.mark.parametrize(
    ("on_term", "grace", "killed", "code"),
    [
        ("SIG_DFL", 5.0, False, -signal.SIGTERM),  # stops on SIGTERM: never killed
        ("SIG_IGN", 0.3, True, -signal.SIGKILL),  # ignores SIGTERM: killed once the grace is over
        ("SIG_IGN", -1.0, True, -signal.SIGKILL),  # a negative grace is no grace
    ],
)
async def test_stop(on_term: str, grace: float, killed: bool, code: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD.format(on_term), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and await proc.stdout.readline() == b"ready\n"
    t0 = time.monotonic()
    assert await processes.stop(proc, grace) is killed
    assert time.monotonic() - t0 < max(grace, 0.0) + 3.0
    assert proc.returncode == code
    assert await processes.stop(proc, grace) is False  # already gone: nothing to do


@pytest.mark.parametrize(
    ("on_term", "same_start", "gone", "waits_out_grace"),
    [
        ("SIG_DFL", True, True, False),  # stops on SIGTERM
        ("SIG_IGN", True, True, True),  # ignores SIGTERM: SIGKILLed once the grace is over
        ("SIG_DFL", False, False, False),  # the PID now names another process: left alone
    ],
)
def test_stop_pid(on_term: str, same_start: bool, gone: bool, waits_out_grace: bool) -> None:
    grace = 0.5
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(on_term)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        started = processes.start_time(child.pid)
        assert started is not None and processes.alive(child.pid, started)
        t0 = time.monotonic()
        processes.stop_pid(child.pid, started if same_start else started + 1, grace)
        elapsed = time.monotonic() - t0
        if gone:  # a signal is delivered asynchronously: wait for the exit, with a deadline
            wait.wait_for_sync(lambda: not processes.alive(child.pid, started), 3.0, message="exit")
        else:  # not signalled at all: still alive right now
            assert processes.alive(child.pid, started)
        assert (elapsed >= grace) is waits_out_grace
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
