"""The agent's read-only stats pages against a real Envoy: per-host counters, latency buckets, names."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from meshplane.agent import admin, health, stats, uds
from tests.support import envoyproc
from tests.support.netaddr import free_port
from tests.support.wait import wait_for

CLUSTER = "outbound|5000||backend.sample.svc.cluster.local"


def bootstrap(admin_pipe: str, listen: int, backend: int) -> dict[str, Any]:
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
        "HttpConnectionManager",
        "stat_prefix": "outbound",
        "route_config": {
            "name": "5000",
            "virtual_hosts": [
                {"name": "backend.sample.svc.cluster.local:5000", "domains": ["*"],
                 "routes": [{"match": {"prefix": "/"}, "route": {"cluster": CLUSTER}}]}
            ],
        },
        "http_filters": [router],
    }  # fmt: skip
    return {
        "admin": {"address": {"pipe": {"path": admin_pipe}}},
        "stats_flush_interval": "0.2s",
        "static_resources": {
            "listeners": [
                {
                    "name": "0.0.0.0_5000",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                    "filter_chains": [
                        {
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": CLUSTER,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": CLUSTER,
                        "endpoints": [
                            {
                                "locality": {"region": "r1", "zone": "z1"},
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": "127.0.0.1",
                                                    "port_value": backend,
                                                }
                                            }
                                        }
                                    }
                                ],
                            }
                        ],
                    },
                }
            ],
        },
    }


@contextlib.asynccontextmanager
async def backend_app(port: int) -> AsyncIterator[None]:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=503 if request.path == "/fail" else 200, text="hi")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def envoy(config: Path, log: Path) -> AsyncIterator[None]:
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            envoyproc.binary(), "-c", str(config), "--disable-hot-restart", "--concurrency", "1",
            stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 10)


async def test_stats_pages_show_envoys_own_counters_latency_and_names(tmp_path: Path) -> None:
    pipe = uds.UdsAddress(tmp_path / "admin.sock")
    listen, backend = free_port(), free_port()
    cfg = tmp_path / "envoy.json"
    cfg.write_text(json.dumps(bootstrap(pipe.envoy_pipe, listen, backend)))
    client = admin.AdminClient(pipe)
    server = health.HealthServer(client, "127.0.0.1", 0, routes=stats.routes(client))
    async with backend_app(backend), envoy(cfg, tmp_path / "envoy.log"):
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            await wait_for(lambda: pipe.path.is_socket(), what="envoy admin socket")
            async with aiohttp.ClientSession() as s:

                async def get(url: str) -> int:
                    try:
                        async with s.get(url) as r:
                            return r.status
                    except aiohttp.ClientError:
                        return 0

                await wait_for(lambda: get(f"http://127.0.0.1:{listen}/ok"), what="envoy listening")
                codes = [await get(f"http://127.0.0.1:{listen}/ok") for _ in range(4)]
                codes += [await get(f"http://127.0.0.1:{listen}/fail") for _ in range(2)]
                assert codes == [200] * 4 + [503] * 2

                async def upstreams() -> Any:
                    async with s.get(base + stats.UPSTREAMS_PATH) as r:
                        assert r.status == 200
                        page = await r.json()
                    entry = next(c for c in page if c["name"] == CLUSTER)
                    # Envoy fills the histogram at its stats flush
                    return entry if entry["rq_time_ms"] and entry["rq_time_ms"][-1][1] >= 7 else None

                entry = await wait_for(upstreams, what="upstream_rq_time flushed")
                (host,) = entry["hosts"]
                # every request Envoy sent to the host, the 5xx among them, as Envoy counts them
                assert host["address"] == "127.0.0.1" and host["port"] == backend
                assert host["rq_total"] == 7 and host["rq_error"] == 2  # + the readiness probe
                assert host["locality"] == "r1/z1" and host["health"] == "HEALTHY"
                assert entry["ssl_handshake"] == 0  # plaintext upstream

                async with s.get(base + stats.CONFIG_PATH) as r:
                    summary = await r.json()
                assert CLUSTER in summary["clusters"]
                assert {"name": "0.0.0.0_5000", "address": f"127.0.0.1:{listen}"} in summary["listeners"]
                assert summary["routes"] == [
                    {"name": "5000", "virtual_hosts": ["backend.sample.svc.cluster.local:5000"]}
                ]

                async with s.get(base + "/stats/prometheus") as r:
                    assert r.status == 404  # Envoy's Prometheus stats are the status port's (15020)
        finally:
            await server.stop()
    # Envoy gone: the pages say so (503), the status server keeps serving
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{server.port}{stats.UPSTREAMS_PATH}") as r,
        ):
            assert r.status == 503 and "envoy admin" in (await r.json())["error"]
    finally:
        await server.stop()
