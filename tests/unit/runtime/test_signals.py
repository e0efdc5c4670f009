import asyncio
import os
import signal

import pytest

from meshplane.runtime import signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_stop_on_signal(sig: signal.Signals) -> None:
    with signals.StopOnSignal() as stop:
        assert not stop.event.is_set()
        os.kill(os.getpid(), sig)
        await asyncio.wait_for(stop.wait(), 5.0)
        assert stop.event.is_set()
    # the handlers are gone: the process's default dispositions are back
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler
    stop.close()  # idempotent
