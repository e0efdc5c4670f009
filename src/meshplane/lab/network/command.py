"""Run one network command (`ip`, `iptables`) as an asyncio subprocess and return its output."""

from __future__ import annotations

import asyncio
import logging
import shlex

from meshplane.lab import errors

log = logging.getLogger(__name__)

TIMEOUT = 30.0  # no `ip` command takes this long; a hung one is an error, not a hang of the lab


async def run(*argv: str, timeout: float = TIMEOUT, stdin: bytes | None = None) -> str:  # noqa: ASYNC109 -- a subprocess deadline
    """Run `argv` (fed `stdin`, e.g. `iptables-restore` input), return its stdout; raise
    NetworkCommandError (command, exit code, stderr) on failure."""
    text = shlex.join(argv)
    log.debug("network: %s", text)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as e:
        raise errors.NetworkCommandError(f"{text}: cannot start: {e}") from e
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError as e:
        proc.kill()
        await proc.wait()
        raise errors.NetworkCommandError(f"{text}: no answer after {timeout}s") from e
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        raise errors.NetworkCommandError(f"{text}: exit {proc.returncode}: {detail}")
    return out.decode(errors="replace")


async def succeeds(*argv: str) -> bool:
    """True when `argv` exits 0 (a probe: `ip link show NAME`, `iptables -C …`)."""
    try:
        await run(*argv)
    except errors.NetworkCommandError:
        return False
    return True
