"""The mesh console at scale (issue 15): 1,000 services and 1,000 proxies.

The console runs as `meshplane discovery` runs it (routes.Console on a server.debug.DebugServer),
over a synthetic mesh: 1,000 services with one endpoint in each of two clusters, 1,000 proxies
(ADS connection objects, 500 per cluster), each proxy calling 3 services. The proxies' agents are
one aiohttp process on 127.0.0.1 that answers every `/stats/upstreams?used=1` with that proxy's
page (Envoy's format as agent/stats.py writes it, counters growing with time), so the collector
really scrapes 1,000 pages every 5 s while someone watches.

- Server: time to answer `/console/graph` (the whole page, SVG included) and `/console/api/graph`,
  median of 5, and their sizes.
- Browser: headless Chromium (Debian's chromium + chromium-driver, selenium) opening
  `/console/graph`: navigation start → first contentful paint and → load event, median of 3.
- Cost while one browser watches the live graph for 60 s (page fragment every 5 s, scrapes every
  5 s): CPU seconds of the console's process (time.process_time) per minute, and per scrape.

Not run by the tests; needs chromium for the browser figures (else they are reported missing).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import textwrap
import time
from types import MappingProxyType
from typing import Any

import aiohttp

from meshplane.console import routes, scrape, views
from meshplane.model import endpoint as ep_mod
from meshplane.model import ids, mesh
from meshplane.model import proxy as proxy_mod
from meshplane.model import service as svc_mod
from meshplane.push import context, metrics
from meshplane.server import ads, connection, debug
from meshplane.xds import generator

SERVICES = 1000
PROXIES = 1000
CALLS = 3
WATCH_SECONDS = 60.0

AGENT = textwrap.dedent(
    """
    import json, sys, time
    from aiohttp import web
    services, start = int(sys.argv[1]), time.monotonic()
    async def page(request):
        p = int(request.match_info["p"])
        n = int((time.monotonic() - start) * 10)
        out = []
        for k in range(3):
            s = (p * 7 + k * 13) % services
            c = f"outbound|5000||svc-{s}.bench.svc.cluster.local"
            hosts = [{"address": f"10.{1 + (p + k) % 2}.{s // 250}.{s % 250 + 1}", "port": 5000,
                      "locality": "", "health": "HEALTHY", "rq_total": n, "rq_error": n // 50,
                      "rq_success": n, "rq_timeout": 0, "rq_active": 0}]
            out.append({"name": c, "hosts": hosts, "ssl_handshake": 1,
                        "rq_time_ms": [[1, n * 0.5], [5, n * 0.95], [25, n]]})
        return web.json_response(out)
    app = web.Application()
    app.router.add_get("/p/{p}/stats/upstreams", page)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=lambda *a: print("ready", flush=True))
    """
)


class _OneAgent(scrape.Collector):
    """One process answers for every proxy: /p/NUMBER/stats/upstreams on 127.0.0.1."""

    def url(self, address: str, path: str = "/stats/upstreams") -> str:
        return f"http://127.0.0.1:{self.port}/p/{address}{path}"


class _Stream:
    async def write(self, data: bytes) -> None:
        return None


def mesh_state() -> tuple[context.PushContext, list[connection.Connection]]:
    services: dict[ids.Hostname, svc_mod.Service] = {}
    endpoints: dict[ids.Hostname, Any] = {}
    for s in range(SERVICES):
        host = ids.Hostname(f"svc-{s}.bench.svc.cluster.local")
        services[host] = svc_mod.Service(
            hostname=host, name=f"svc-{s}", namespace="bench", ports=(svc_mod.ServicePort("http", 5000),)
        )
        shards = {}
        for c in (1, 2):
            cid = ids.ClusterId(f"cluster{c}")
            shards[cid] = (
                ep_mod.Endpoint(
                    address=f"10.{c}.{s // 250}.{s % 250 + 1}",
                    ports={"http": 5000},
                    cluster_id=cid,
                    namespace="bench",
                    labels=MappingProxyType({"app": f"svc-{s}", "version": f"v{c}"}),
                    workload_name=f"svc-{s}-v{c}-0",
                ),
            )
        endpoints[host] = MappingProxyType(shards)
    ctx = context.PushContext(
        version="bench", mesh=mesh.MeshConfig(), services=MappingProxyType(services), endpoints=endpoints
    )
    conns = []
    for p in range(PROXIES):
        cid = ids.ClusterId(f"cluster{1 + p % 2}")
        proxy = proxy_mod.Proxy(
            id=ids.ProxyId(f"client-{p}.bench"),
            type=proxy_mod.ProxyType.SIDECAR,
            ip_addresses=(str(p),),  # bench only: the proxy's number, which the fake agent's URL carries
            pod_name=f"client-{p}",
            namespace="bench",
            dns_domain="bench.svc.cluster.local",
            cluster_id=cid,
            labels=MappingProxyType({"app": f"client-{p % 50}"}),
        )
        conns.append(connection.Connection(proxy, False, "bench", _Stream(), time.time()))
    return ctx, conns


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    async with session.get(url) as r:
        body = await r.read()
        assert r.status == 200, r.status
    return time.perf_counter() - t0, len(body)


def _browser(url: str, watch: float) -> dict[str, Any]:
    """In a thread: first-render timings, then watch the live graph for `watch` seconds."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=opts)
    try:
        fcp, load = [], []
        for _ in range(3):
            d.get(url)
            t = d.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "const p = performance.getEntriesByName('first-contentful-paint')[0];"
                "return [p ? p.startTime : null, n.loadEventEnd];"
            )
            fcp.append(t[0])
            load.append(t[1])
        t0 = time.monotonic()
        while time.monotonic() - t0 < watch:
            time.sleep(1.0)  # the page updates itself; this thread only keeps the browser open
        return {
            "fcp_ms": statistics.median(x for x in fcp if x is not None),
            "load_ms": statistics.median(load),
        }
    finally:
        d.quit()


async def run() -> str:
    ctx, conns = mesh_state()
    m = metrics.Metrics()
    server = ads.AdsServer(generator.Generator(), metrics=m, cluster_id=ids.ClusterId("cluster1"))
    state = views.State(connections=lambda: conns, push_context=lambda: ctx, propagation=lambda: {})
    agent_port = _free_port()
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT, str(SERVICES), str(agent_port), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert agent.stdout is not None and (await agent.stdout.readline()).strip() == b"ready"
        collector = _OneAgent(lambda: [(c.proxy.id, c.proxy.ip) for c in conns], port=agent_port)
        console = routes.Console(state, collector)
        dbg = debug.DebugServer(server, m)
        console.mount(dbg)
        port = await dbg.start("127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}"
        task = asyncio.create_task(collector.run())
        try:
            collector.touch()
            await collector.scrape_once()
            await asyncio.sleep(5)  # a second sample: rates exist
            async with aiohttp.ClientSession() as s:
                page = [await _get(s, base + "/console/graph") for _ in range(5)]
                api = [await _get(s, base + "/console/api/graph") for _ in range(5)]
            nodes = len(views.graph(state, collector.traffic())["nodes"])
            edges = len(views.graph(state, collector.traffic())["edges"])
            browser: dict[str, Any] | str
            if shutil.which("chromium") and shutil.which("chromedriver"):
                scrapes0, cpu0, t0 = collector.scrapes, time.process_time(), time.monotonic()
                browser = await asyncio.to_thread(_browser, base + "/console/graph", WATCH_SECONDS)
                cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
                scrapes = collector.scrapes - scrapes0
            else:
                browser, cpu, wall, scrapes = "chromium not installed", 0.0, 0.0, 0
        finally:
            task.cancel()
            await dbg.stop()
    finally:
        agent.terminate()
        await asyncio.wait_for(agent.wait(), 10)
    lines = [
        "## Mesh console (bench/bench_console.py)",
        "",
        f"{SERVICES} services (an endpoint in each of 2 clusters), {PROXIES} proxies each calling {CALLS} "
        f"services; graph of {nodes} nodes and {edges} edges; one process stands in for the proxies' agents. "
        "Measured with `python -m bench console`.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| `/console/graph` (whole page, SVG) | {statistics.median(t for t, _ in page) * 1000:.0f} ms, "
        f"{page[0][1] / 1e6:.1f} MB |",
        f"| `/console/api/graph` (JSON) | {statistics.median(t for t, _ in api) * 1000:.0f} ms, "
        f"{api[0][1] / 1e6:.1f} MB |",
    ]
    if isinstance(browser, dict):
        lines += [
            f"| headless Chromium: first contentful paint | {browser['fcp_ms']:.0f} ms |",
            f"| headless Chromium: load event | {browser['load_ms']:.0f} ms |",
            f"| console process CPU while one browser watches ({wall:.0f} s, {scrapes} scrapes of "
            f"{PROXIES} proxies) | {cpu / wall * 60:.1f} CPU-s per minute ({cpu / max(1, scrapes):.2f} s per "
            "scrape + page update) |",
        ]
    else:
        lines.append(f"| browser figures | not measured: {browser} |")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    print(asyncio.run(run()))
