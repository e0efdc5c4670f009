"""Readiness on INSTANCE_IP:15021 `/healthz/ready`, what the kubelet (or the lab) probes; the same
server carries the read-only stats pages of `stats.py` (`routes`).

Like Istio's readiness probe (pilot/cmd/pilot-agent/status/ready): 200 only when Envoy's admin
`/ready` says LIVE and Envoy has accepted listeners and clusters at least once
(`listener_manager.lds.update_success` and `cluster_manager.cds.update_success` > 0), else 503
with the reason. Envoy's own init waits for the first LDS/CDS answers, but turns LIVE anyway
after its initial fetch timeout, so the stats make sure a proxy without config is never ready.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from meshplane.agent import admin, errors
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

READY_PATH = "/healthz/ready"


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str


async def check(client: admin.AdminClient) -> Readiness:
    try:
        state = await client.server_state()
        if state != "LIVE":
            return Readiness(False, f"envoy state is {state or 'unknown'}")
        stats = await client.stats(admin.LDS_SUCCESS, admin.CDS_SUCCESS)
    except errors.AgentError as e:
        return Readiness(False, f"envoy admin unreachable: {e}")
    missing = [name for name in (admin.CDS_SUCCESS, admin.LDS_SUCCESS) if stats.get(name, 0) <= 0]
    if missing:
        return Readiness(False, "config not received: " + ", ".join(missing) + " is 0")
    return Readiness(True, "ok")


class HealthServer:
    def __init__(
        self,
        client: admin.AdminClient,
        host: str,
        port: int,
        log_id: str = "",
        routes: Mapping[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._client = client
        self._routes = dict(routes or {})
        self._on_ready = on_ready
        self._host = host
        self._port = port
        self._log_id = log_id
        self._runner: web.AppRunner | None = None
        self.last: Readiness | None = None

    async def _ready(self, _request: web.Request) -> web.Response:
        result = await check(self._client)
        if self.last is None or result.ready != self.last.ready:
            log.info("readiness %s", kv(proxy=self._log_id, ready=result.ready, reason=result.reason))
        self.last = result
        if result.ready and self._on_ready is not None:
            self._on_ready()
        return web.Response(status=200 if result.ready else 503, text=result.reason + "\n")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(READY_PATH, self._ready)
        for path, handler in self._routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        log.info("readiness serving %s", kv(proxy=self._log_id, address=f"{self._host}:{self.port}"))

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._runner is None:
            return self._port
        for addr in self._runner.addresses:
            return int(addr[1])
        return self._port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
