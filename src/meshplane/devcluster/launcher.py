"""Dev clusters as background processes (`meshplane devcluster serve`), started and stopped by PID.

Used by `meshplane demo`; each process writes its kubeconfig and log under a work dir and prints
`ready https://HOST:PORT` once it serves.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from meshplane.devcluster import errors
from meshplane.runtime import processes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Launched:
    name: str
    pid: int
    url: str
    kubeconfig: Path
    log: Path
    process: asyncio.subprocess.Process = field(compare=False, repr=False)


async def launch(
    name: str,
    workdir: Path,
    *,
    data_dir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    ready_within: float = 60.0,
) -> Launched:
    """Start one cluster in the background and wait for its ready line."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    kubeconfig = workdir / f"{name}.kubeconfig"
    log_path = workdir / f"{name}.log"
    args = [
        sys.executable,
        "-m",
        "meshplane",
        "devcluster",
        "serve",
        "--name",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--kubeconfig-out",
        str(kubeconfig),
    ]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    log_file = await asyncio.to_thread(open, log_path, "ab")
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log_file.close()
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), ready_within)
    except TimeoutError:
        line = b""
    except BaseException:
        await _kill(proc, 5.0)
        raise
    text = line.decode(errors="replace").strip()
    if not text.startswith("ready https://"):
        await _kill(proc, 5.0)
        raise errors.LaunchError(
            f"dev cluster {name} did not start (see {log_path}): {text or 'no ready line'}"
        )
    log.info("dev cluster started cluster=%s pid=%d url=%s", name, proc.pid, text.split()[1])
    return Launched(name, proc.pid, text.split()[1], kubeconfig, log_path, proc)


async def stop(cluster: Launched, grace: float = 10.0) -> None:
    """SIGTERM by PID, then SIGKILL if it has not exited within `grace` seconds."""
    await _kill(cluster.process, grace)
    log.info("dev cluster stopped cluster=%s pid=%d", cluster.name, cluster.pid)


async def _kill(proc: asyncio.subprocess.Process, grace: float) -> None:
    await processes.stop(proc, grace)
    if proc.stdout is not None:
        proc.stdout.feed_eof()
