"""Dev cluster benchmark: write throughput and watch event latency.

The server runs as `meshplane devcluster serve` in its own process (as users run it); the client
is aiohttp over HTTPS with keep-alive, all on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from meshplane.devcluster import launcher

WRITES = 1000
CONCURRENCY = 16
WATCHERS = 100
EVENTS = 100


def _client_ssl(cfg: dict[str, Any]) -> ssl.SSLContext:
    ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    return ssl.create_default_context(cadata=ca)


async def _session(c: launcher.Launched) -> tuple[aiohttp.ClientSession, str]:
    cfg = yaml.safe_load(c.kubeconfig.read_text())
    token = cfg["users"][0]["user"]["token"]
    conn = aiohttp.TCPConnector(ssl=_client_ssl(cfg), limit=WATCHERS + CONCURRENCY + 4)
    session = aiohttp.ClientSession(
        connector=conn,
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=None),
    )
    return session, c.url


async def _writes(session: aiohttp.ClientSession, url: str, ns: str) -> tuple[float, float]:
    path = f"{url}/api/v1/namespaces/{ns}/configmaps"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(WRITES):
        queue.put_nowait(i)

    async def create_worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            async with session.post(path, json={"metadata": {"name": f"cm{i}"}, "data": {"v": "0"}}) as r:
                assert r.status == 201, await r.text()

    t0 = time.perf_counter()
    await asyncio.gather(*(create_worker() for _ in range(CONCURRENCY)))
    create_rate = WRITES / (time.perf_counter() - t0)
    for i in range(WRITES):
        queue.put_nowait(i)

    async def update_worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            async with session.patch(
                f"{path}/cm{i}",
                data=json.dumps({"data": {"v": "1"}}),
                headers={"Content-Type": "application/merge-patch+json"},
            ) as r:
                assert r.status == 200, await r.text()

    t0 = time.perf_counter()
    await asyncio.gather(*(update_worker() for _ in range(CONCURRENCY)))
    return create_rate, WRITES / (time.perf_counter() - t0)


async def _latency(session: aiohttp.ClientSession, url: str, ns: str) -> list[float]:
    path = f"{url}/api/v1/namespaces/{ns}/configmaps"
    rv = (await (await session.get(path + "?limit=1")).json())["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    samples: list[float] = []
    ready = asyncio.Event()
    connected = 0

    async def watcher() -> None:
        nonlocal connected
        async with session.get(f"{path}?watch=1&resourceVersion={rv}") as r:
            connected += 1
            if connected == WATCHERS:
                ready.set()
            seen = 0
            async for line in r.content:
                ev = json.loads(line)
                name = ev["object"]["metadata"]["name"]
                if name in sent:
                    samples.append(time.perf_counter() - sent[name])
                    seen += 1
                    if seen == EVENTS:
                        return

    tasks = [asyncio.create_task(watcher()) for _ in range(WATCHERS)]
    await asyncio.wait_for(ready.wait(), 60)
    for i in range(EVENTS):
        name = f"lat{i}"
        sent[name] = time.perf_counter()
        async with session.post(path, json={"metadata": {"name": name}}) as r:
            assert r.status == 201
        await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return samples


async def _one(data_dir: bool) -> tuple[float, float, list[float]]:
    with tempfile.TemporaryDirectory(prefix="meshplane-bench-") as d:
        work = Path(d)
        c = await launcher.launch("bench", work, data_dir=work / "data" if data_dir else None)
        session, url = await _session(c)
        try:
            for ns in ("bench-w", "bench-l"):
                async with session.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": ns}}) as r:
                    assert r.status == 201
            create_rate, update_rate = await _writes(session, url, "bench-w")
            samples = await _latency(session, url, "bench-l")
        finally:
            await session.close()
            await launcher.stop(c)
    return create_rate, update_rate, samples


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run() -> str:
    rows = []
    lat_rows = []
    for data_dir in (False, True):
        create_rate, update_rate, samples = await _one(data_dir)
        label = "SQLite (--data-dir)" if data_dir else "in memory"
        rows.append(f"| {label} | {create_rate:.0f} | {update_rate:.0f} |")
        lat_rows.append(
            f"| {label} | {len(samples)} | {statistics.median(samples) * 1000:.1f} | "
            f"{_pct(samples, 0.99):.1f} |"
        )
    return "\n".join(
        [
            "## Dev cluster",
            "",
            f"Writes per second: {WRITES} ConfigMap creates, then {WRITES} merge-patch updates, "
            f"{CONCURRENCY} concurrent HTTPS clients (keep-alive), server in its own process.",
            "",
            "| storage | creates/s | updates/s |",
            "|---|---|---|",
            *rows,
            "",
            f"Event latency: {WATCHERS} concurrent watches on one namespace, {EVENTS} creates 10 ms apart; "
            "time from sending the write to each watcher receiving its event.",
            "",
            "| storage | samples | p50 ms | p99 ms |",
            "|---|---|---|---|",
            *lat_rows,
            "",
        ]
    )
