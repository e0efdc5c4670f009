"""Debug and metrics HTTP on the monitoring port (Istio's 15014): /debug/syncz, /debug/configz, /metrics.

/debug/propagationz (meshplane's own) lists, per cluster, the recent samples of
meshplane_config_propagation_seconds with their p50 and p99 (what `remote-clusters -o wide` shows).

The composition root adds its own pages (`/debug/registryz`, `/debug/clusterz`) with `add_json()`
before `start()`. Large pages (configz of 1,000 services) are rendered on a thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from meshplane.push import context, metrics
from meshplane.runtime import logging as rlog
from meshplane.server import ads

log = logging.getLogger(__name__)

JsonSource = Callable[[], object | Awaitable[object]]


def jsonable(obj: Any) -> Any:
    """Model objects (frozen dataclasses, mappings, enums, sets) as plain JSON values."""
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, frozenset | set):
        return sorted((jsonable(x) for x in obj), key=str)
    if isinstance(obj, list | tuple):
        return [jsonable(x) for x in obj]
    return str(obj)


def configz(ctx: context.PushContext | None) -> dict[str, Any]:
    """The current PushContext: version, mesh config, services and endpoints per cluster."""
    if ctx is None:
        return {"version": None, "mesh": None, "services": [], "endpoints": {}}
    return {
        "version": ctx.version,
        "mesh": jsonable(ctx.mesh),
        "services": [jsonable(ctx.services[h]) for h in sorted(ctx.services)],
        "endpoints": {
            h: {c: [jsonable(e) for e in eps] for c, eps in sorted(shards.items())}
            for h, shards in sorted(ctx.endpoints.items())
        },
        "networking": jsonable(ctx.networking),
    }


def _dumps(value: object) -> str:
    return json.dumps(value, indent=1, sort_keys=False)


class DebugServer:
    def __init__(self, ads_server: ads.AdsServer, metrics: metrics.Metrics) -> None:
        self._ads = ads_server
        self._metrics = metrics
        self._app = web.Application()
        self._runner: web.AppRunner | None = None
        self._pages: list[str] = []
        self.port = 0
        self.add_json("/debug/syncz", self._ads.syncz)
        self.add_json("/debug/propagationz", self._propagationz)
        self.add_handler("/debug/configz", self._configz)
        self.add_handler("/metrics", self._metrics_page)
        self._app.router.add_get("/debug", self._index)

    def add_handler(self, path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        """Add a GET page; call before `start()`."""
        if self._runner is not None:
            raise RuntimeError("add pages before start()")
        self._app.router.add_get(path, handler)
        self._pages.append(path)

    def add_json(self, path: str, source: JsonSource) -> None:
        """Add a GET page serving `source()` (sync or async) as JSON, e.g. /debug/registryz."""

        async def handler(_: web.Request) -> web.Response:
            value = source()
            if inspect.isawaitable(value):
                value = await value
            body = await asyncio.to_thread(_dumps, value)
            return web.Response(text=body, content_type="application/json")

        self.add_handler(path, handler)

    def _propagationz(self) -> list[dict[str, Any]]:
        return [{"cluster": c, **v} for c, v in self._ads.propagation.summary().items()]

    async def _configz(self, _: web.Request) -> web.Response:
        ctx = self._ads.current
        body = await asyncio.to_thread(lambda: _dumps(configz(ctx)))
        return web.Response(text=body, content_type="application/json")

    async def _metrics_page(self, _: web.Request) -> web.Response:
        body = self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def _index(self, _: web.Request) -> web.Response:
        return web.Response(text=_dumps(sorted(self._pages)), content_type="application/json")

    async def start(self, host: str, port: int) -> int:
        """Serve on host:port (0 picks a free port); returns the bound port."""
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        log.info("debug server listening %s", rlog.kv(address=host, port=self.port))
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
