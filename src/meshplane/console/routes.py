"""The console's HTTP routes on the control plane's monitoring server (15014), all GET, read-only.

    /console/                   → /console/graph
    /console/{view}             graph, clusters, services, proxies (?workload=), config: a page
    /console/{view}?fragment=1  its content only (what console.js polls)
    /console/proxies/{id}       one proxy: sync state and the names its Envoy holds
    /console/api/{view}         the same views as JSON; /console/api/proxies/{id} too
    /console/static/{file}      console.js, console.css (shipped in the package)

Any page or API call counts as someone watching: the collector scrapes the proxies while that
lasts (scrape.py) and stops a minute after the last one.
"""

from __future__ import annotations

import asyncio
import importlib.resources
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from meshplane.console import render, scrape, views
from meshplane.server import debug

VIEWS = tuple(v for v, _ in render.NAV)
_STATIC_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _static(name: str) -> bytes:
    return importlib.resources.files("meshplane.console").joinpath("static", name).read_bytes()


class Console:
    def __init__(self, state: views.State, collector: scrape.Collector) -> None:
        self.state = state
        self.collector = collector
        self._static = {name: _static(name) for name in _STATIC_TYPES}

    def mount(self, server: debug.DebugServer) -> None:
        server.add_handler("/console", self._home)
        server.add_handler("/console/", self._home)
        server.add_handler("/console/static/{name}", self._static_file)
        server.add_handler("/console/api/proxies/{id}", self._api_proxy)
        server.add_handler("/console/api/{view}", self._api)
        server.add_handler("/console/proxies/{id}", self._proxy_page)
        server.add_handler("/console/{view}", self._page)

    # --- data ------------------------------------------------------------------------------------
    def view(self, name: str) -> dict[str, Any]:
        """One view's JSON value (`name` in VIEWS)."""
        self.collector.touch()
        if name == "graph":
            return views.graph(self.state, self.collector.traffic())
        if name == "clusters":
            return views.clusters(self.state)
        if name == "services":
            return views.services(self.state)
        if name == "proxies":
            return views.proxies(self.state, self.collector.traffic())
        if name == "config":
            return views.config(self.state)
        raise KeyError(name)

    async def proxy_detail(self, proxy_id: str) -> dict[str, Any] | None:
        self.collector.touch()
        conn = views.proxy(self.state, proxy_id)
        if conn is None:
            return None
        row = views.proxy_row(conn, self.collector.traffic().errors.get(proxy_id, ""))
        config: dict[str, Any] | None = None
        error = ""
        try:
            config = await self.collector.proxy_config(conn.proxy.ip)
        except Exception as e:  # unreachable agent, old agent, bad answer: say so on the page
            error = f"{self.collector.url(conn.proxy.ip, '/stats/config')}: {e or type(e).__name__}"
        return {"proxy": row, "config": config, "config_error": error}

    # --- handlers --------------------------------------------------------------------------------
    async def _home(self, _: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/console/graph")

    async def _static_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = self._static.get(name)
        if body is None:
            raise web.HTTPNotFound(text=f"no static file {name!r}\n")
        return web.Response(
            body=body, content_type=_STATIC_TYPES[name], headers={"Cache-Control": "no-cache"}
        )

    async def _api(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["view"]
        if name not in VIEWS:
            return web.json_response({"error": f"no view {name!r}; views: {', '.join(VIEWS)}"}, status=404)
        value = self.view(name)
        body = await asyncio.to_thread(render.dumps, value)
        return web.Response(text=body, content_type="application/json")

    async def _api_proxy(self, request: web.Request) -> web.StreamResponse:
        detail = await self.proxy_detail(request.match_info["id"])
        if detail is None:
            return web.json_response(
                {"error": f"no proxy {request.match_info['id']!r} connected"}, status=404
            )
        return web.json_response(detail)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["view"]
        if name not in VIEWS:
            return self._html(request, "", "Not found", render.not_found(f"no view {name!r}"), 404)
        value = self.view(name)
        if name == "proxies":
            workload = request.query.get("workload", "")
            content = await asyncio.to_thread(render.proxies, value, workload)
        else:
            content = await asyncio.to_thread(getattr(render, name), value)
        return self._html(request, name, dict(render.NAV)[name], content)

    async def _proxy_page(self, request: web.Request) -> web.StreamResponse:
        detail = await self.proxy_detail(request.match_info["id"])
        if detail is None:
            content = render.not_found(
                f"no proxy {request.match_info['id']!r} is connected to this control plane"
            )
            return self._html(request, "proxies", "Proxy", content, 404)
        content = render.proxy(detail["proxy"], detail["config"], detail["config_error"])
        return self._html(request, "proxies", f"Proxy {detail['proxy']['id']}", content)

    def _html(
        self, request: web.Request, view: str, title: str, content: str, status: int = 200
    ) -> web.Response:
        text = content if request.query.get("fragment") == "1" else render.page(view, title, content)
        return web.Response(text=text, content_type="text/html", status=status)
