"""Small aiohttp apps standing in for workloads: they answer with their name and the XFCC header."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serve(name: str, host: str, port: int = 0) -> AsyncIterator[int]:
    """Serve `name` on host:port (0: a free port); yields the bound port."""

    async def handle(request: web.Request) -> web.Response:
        return web.json_response(
            {"name": name, "xfcc": request.headers.get("x-forwarded-client-cert", ""), "path": request.path}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=False)
    await site.start()
    server = site._server
    assert server is not None
    sockets = server.sockets  # type: ignore[attr-defined]
    bound = sockets[0].getsockname()[1]
    try:
        yield bound
    finally:
        await runner.cleanup()
