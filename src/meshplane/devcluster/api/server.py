"""The HTTPS listener: one aiohttp catch-all route into the dispatcher."""

from __future__ import annotations

import logging
import ssl
from typing import cast

from aiohttp import web

from meshplane.devcluster.api import dispatch

log = logging.getLogger(__name__)


class HttpsServer:
    def __init__(
        self, dispatcher: dispatch.Dispatcher, host: str, port: int, ssl_ctx: ssl.SSLContext
    ) -> None:
        self._dispatcher = dispatcher
        self._host = host
        self._port = port
        self._ssl = ssl_ctx
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> int:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatcher.handle)
        # handler_cancellation: a client that goes away cancels its handler (watches end at once)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(
            runner, self._host, self._port, ssl_context=self._ssl, backlog=512, reuse_address=True
        )
        await site.start()
        self._runner = runner
        server = cast("object", site._server)
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self._port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
