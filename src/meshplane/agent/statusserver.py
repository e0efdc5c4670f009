"""The agent's status port (Istio's 15020, pilot/cmd/pilot-agent/status/server.go): merged metrics.

`/stats/prometheus` (and `/metrics`) answer the agent's own metrics (metrics.py), then Envoy's
`/stats/prometheus` (read through the admin socket, the query string passed on), then, for a
sidecar whose pod asked to be scraped (`ISTIO_PROMETHEUS_ANNOTATIONS`, set by the injector's
Prometheus merge), the app's metrics from the pod's localhost — a plain concatenation, as Istio's
`handleStats` does. A part that cannot be scraped is left out and counted in
`istio_agent_scrape_failures_total{type=envoy|application}`; the answer is still 200, so Envoy's
metrics survive a broken app and the other way round. The content type is Prometheus text, or the
app's OpenMetrics type when it answered in that format (its `# EOF` must come last).
`/healthz/ready` answers the same readiness as 15021 (health.py).

Differences: served on the pod IP (as the 15021 readiness is; in the lab's loopback mode pods share
the host's addresses) rather than on every address; no `/quitquitquit`, `/drain`, `/app-health`
or pprof endpoints.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web
from prometheus_client import exposition

from meshplane.agent import admin, config, errors, health, metrics
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text"
DEFAULT_TIMEOUT = 10.0
_PASS_HEADERS = ("Accept", "User-Agent", "X-Prometheus-Scrape-Timeout-Seconds")


def _timeout(request: web.Request) -> float:
    value = request.headers.get("X-Prometheus-Scrape-Timeout-Seconds", "")
    try:
        return max(0.1, float(value)) if value else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def _format(content_type: str) -> str:
    """Istio's negotiateMetricsFormat: the app's OpenMetrics type (version 0.0.1 or 1.0.0), else text."""
    media, _, params = content_type.partition(";")
    if media.strip() != OPENMETRICS:
        return TEXT
    version = ""
    for p in params.split(";"):
        key, _, val = p.strip().partition("=")
        if key == "version":
            version = val.strip()
    if version in ("", "0.0.1"):
        return f"{OPENMETRICS}; version=0.0.1; charset=utf-8"
    if version == "1.0.0":
        return f"{OPENMETRICS}; version=1.0.0; charset=utf-8"
    return TEXT


class StatusServer:
    def __init__(
        self,
        client: admin.AdminClient,
        agent_metrics: metrics.AgentMetrics,
        host: str,
        port: int = config.STATS_PORT,
        *,
        app: config.AppScrape | None = None,
        app_host: str = "127.0.0.1",
        log_id: str = "",
    ) -> None:
        self._client = client
        self._metrics = agent_metrics
        self._host = host
        self._port = port
        self._app = app
        self._app_host = app_host
        self._log_id = log_id
        self._runner: web.AppRunner | None = None

    async def _envoy(self, request: web.Request) -> str | None:
        try:
            async with asyncio.timeout(_timeout(request)):
                return await self._client.prometheus(request.query_string)
        except (errors.AgentError, TimeoutError) as e:
            log.warning("failed scraping envoy metrics %s", kv(proxy=self._log_id, error=e))
            self._metrics.scrape_failures.labels("envoy").inc()
            return None

    async def _application(self, request: web.Request) -> tuple[str, str] | None:
        if self._app is None:
            return None
        url = f"http://{self._app_host}:{self._app.port}{self._app.path}"
        headers = {h: request.headers[h] for h in _PASS_HEADERS if h in request.headers}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_timeout(request))) as session,
                session.get(url, headers=headers) as resp,
            ):
                if resp.status != 200:
                    raise errors.AgentError(f"GET {url} answered {resp.status}")
                return resp.headers.get("Content-Type", ""), await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError, errors.AgentError) as e:
            log.warning("failed scraping application metrics %s", kv(proxy=self._log_id, url=url, error=e))
            self._metrics.scrape_failures.labels("application").inc()
            return None

    async def _stats(self, request: web.Request) -> web.Response:
        self._metrics.scrapes.inc()
        envoy = await self._envoy(request)
        application = await self._application(request)
        content_type = _format(application[0]) if application else TEXT
        parts = [exposition.generate_latest(self._metrics.registry).decode()]
        if envoy:
            parts.append(envoy)
        if application:
            parts.append(application[1])
        body = "".join(p if p.endswith("\n") else p + "\n" for p in parts if p)
        resp = web.Response(body=body.encode())
        resp.headers["Content-Type"] = content_type
        return resp

    async def _ready(self, _request: web.Request) -> web.Response:
        result = await health.check(self._client)
        if result.ready:
            self._metrics.ready()
        return web.Response(status=200 if result.ready else 503, text=result.reason + "\n")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/stats/prometheus", self._stats)
        app.router.add_get("/metrics", self._stats)
        app.router.add_get(health.READY_PATH, self._ready)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self._host, self._port).start()
        self._runner = runner
        log.info("status port serving %s", kv(proxy=self._log_id, address=f"{self._host}:{self.port}"))

    @property
    def port(self) -> int:
        if self._runner is None:
            return self._port
        for addr in self._runner.addresses:
            return int(addr[1])
        return self._port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
