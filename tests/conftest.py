"""Suite-wide rules: every test stops the threads it started.

A thread that outlives its test keeps running (and logging) after pytest has closed that test's
output capture: the `--- Logging error --- ValueError: I/O operation on closed file` tracebacks of
a full run. So every test, and every module/class/session-scoped fixture, must stop what it started
before it ends.

How a thread is attributed:
- `threading.Thread.start` is wrapped to remember which thread started each thread, so a thread
  started by a fixture's thread (say a dev cluster's loop thread running a `to_thread` call) belongs
  to that fixture, however late it was started.
- Threads started while a non-function-scoped fixture is set up belong to that fixture; they are
  checked when it is finalized (`pytest_fixture_post_finalizer`).
- Every other thread started during a test belongs to the test; it is checked when the test's
  teardown ends (`_no_thread_leaks`, autouse, set up first so torn down after all other
  function-scoped fixtures).

A check waits up to `JOIN_TIMEOUT` seconds for the threads to finish (stop() of an executor or a
server may return a moment before its threads exit), then fails naming each thread still alive.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["tests.support.clusterfixtures"]

JOIN_TIMEOUT = 2.0

_creator: weakref.WeakKeyDictionary[threading.Thread, threading.Thread] = weakref.WeakKeyDictionary()
_owner: weakref.WeakKeyDictionary[threading.Thread, Any] = weakref.WeakKeyDictionary()  # → FixtureDef
_live_fixtures: set[int] = set()  # id() of non-function-scoped FixtureDefs set up and not yet finalized
# threads something still alive owns, with whom they were first charged to: checked again later
_deferred: weakref.WeakKeyDictionary[threading.Thread, str] = weakref.WeakKeyDictionary()
_reported: weakref.WeakSet[threading.Thread] = weakref.WeakSet()  # failed once: not blamed again

_original_start = threading.Thread.start


def _start(self: threading.Thread) -> None:
    _creator[self] = threading.current_thread()
    _original_start(self)


threading.Thread.start = _start  # type: ignore[method-assign]


def _fixture_owning(t: threading.Thread) -> Any:
    """The non-function-scoped fixture a thread belongs to (through the threads that started it)."""
    seen: set[int] = set()
    cur: threading.Thread | None = t
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        fixturedef = _owner.get(cur)
        if fixturedef is not None:
            return fixturedef
        cur = _creator.get(cur)
    return None


def _open_loop_executing(t: threading.Thread) -> bool:
    """True if `t` is a default-executor worker (`asyncio_N`) of an event loop still open.

    Excluded from a test's check because its loop, not the test, owns it: a module-scoped
    pytest-asyncio loop (or a fixture's loop) keeps its default executor until the loop is closed,
    and closing it (asyncio.Runner.close, ThreadedCluster.close) joins these workers through
    `shutdown_default_executor`. The thread stays deferred and is checked again once its loop closed.
    """
    if not t.name.startswith("asyncio_"):
        return False
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.AbstractEventLoop) and not obj.is_closed():
            executor = getattr(obj, "_default_executor", None)
            if executor is not None and t in getattr(executor, "_threads", ()):
                return True
    return False


def _still_owned(t: threading.Thread) -> bool:
    fixturedef = _fixture_owning(t)
    if fixturedef is not None and id(fixturedef) in _live_fixtures:
        return True
    return _open_loop_executing(t)


def _check(candidates: dict[threading.Thread, str]) -> None:
    """Defer the threads something alive still owns; wait (bounded) for the rest; fail on stragglers.
    `candidates` maps each thread to the test or fixture that started it."""
    waiting = {}
    for t, who in candidates.items():
        if not t.is_alive() or t in _reported or t is threading.current_thread():
            _deferred.pop(t, None)
        elif _still_owned(t):
            _deferred.setdefault(t, who)
        else:
            _deferred.pop(t, None)
            waiting[t] = who
    deadline = time.monotonic() + JOIN_TIMEOUT
    if any(t.is_alive() for t in waiting):
        # Some threads end when their owner object is freed, not when it is stopped: grpc.aio runs
        # one poller thread while any aio server or channel exists. A stopped server held only by a
        # reference cycle (an exception's traceback, say) is freed here rather than at some later GC.
        gc.collect()
    for t in waiting:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = {t: who for t, who in waiting.items() if t.is_alive()}
    if alive:
        _reported.update(alive)
        names = "; ".join(
            f"{t.name!r} (target {getattr(t, '_target', None)!r}) started by {who}"
            for t, who in alive.items()
        )
        pytest.fail(
            f"{len(alive)} thread(s) still running {JOIN_TIMEOUT:.0f}s after their owner's teardown: {names}."
            " Stop (and join) what you start before the test or fixture ends.",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    if fixturedef.scope == "function":
        return (yield)
    before = set(threading.enumerate())
    try:
        return (yield)
    finally:
        _live_fixtures.add(id(fixturedef))
        for t in set(threading.enumerate()) - before:
            _owner.setdefault(t, fixturedef)


def pytest_fixture_post_finalizer(fixturedef: Any, request: pytest.FixtureRequest) -> None:
    if id(fixturedef) not in _live_fixtures:
        return
    _live_fixtures.discard(id(fixturedef))
    # The fixture is torn down; pytest drops its value right after this hook. Drop it now, so that
    # what lives only as long as its object (a grpc.aio channel's poller thread) can end first.
    fixturedef.cached_result = None
    who = f"fixture {fixturedef.argname!r} ({fixturedef.scope} scope, {request.node.nodeid})"
    _check({t: who for t in threading.enumerate() if _fixture_owning(t) is fixturedef})


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """CLI entry points run in-process (typer's CliRunner) call `runtime.logging.setup()`, which
    points the root logger at that run's stderr, closed when the run ends. Left in place, every later
    log line fails with `--- Logging error --- ValueError: I/O operation on closed file`."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _no_thread_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    # Every other function-scoped fixture is torn down by now (this one was set up first), but the
    # test item still holds their values until pytest's teardown phase ends: drop them, so that what
    # lives only as long as its object (a grpc.aio channel's poller thread) can end now.
    request.node.funcargs.clear()
    started = {t: request.node.nodeid for t in set(threading.enumerate()) - before}
    _check({**started, **_deferred})
