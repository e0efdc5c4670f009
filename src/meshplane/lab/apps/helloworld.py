"""Istio's helloworld sample app: `GET /hello` answers `Hello version: vN, instance: POD_NAME`.

Like the sample (samples/helloworld/src/app.py), it listens on port 5000, takes its version from
SERVICE_VERSION (which the v1/v2 images set) and its instance name from HOSTNAME; `/health`
answers too. In the lab it listens on MESHPLANE_LISTEN_ADDRESS: the pod IP, or the pod-local
address when the pod has a sidecar (the sidecar owns the pod IP's port 5000 and forwards to it).
"""

from __future__ import annotations

import asyncio
import logging
import os

from aiohttp import web

from meshplane.runtime import logging as mlogging
from meshplane.runtime import signals

log = logging.getLogger(__name__)
PORT = 5000


def hello_text(version: str, instance: str) -> str:
    return f"Hello version: {version}, instance: {instance}\n"


def caller(xfcc: str) -> str:
    """The calling workload's SPIFFE ID from the sidecar's x-forwarded-client-cert (last element)."""
    if not xfcc:
        return ""
    for pair in xfcc.split(",")[-1].split(";"):
        key, _, value = pair.strip().partition("=")
        if key == "URI":
            return value.strip('"')
    return ""


def make_app(version: str, instance: str) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        who = caller(request.headers.get("x-forwarded-client-cert", ""))
        log.info("GET /hello caller=%s", who or "-")
        return web.Response(text=hello_text(version, instance))

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="Helloworld is healthy")

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/health", health)
    return app


async def serve(host: str, port: int, version: str, instance: str) -> None:
    runner = web.AppRunner(make_app(version, instance), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    log.info("helloworld listening address=%s:%d version=%s instance=%s", host, port, version, instance)
    with signals.StopOnSignal() as stop:
        try:
            await stop.wait()
        finally:
            await runner.cleanup()


def main() -> int:
    mlogging.setup()
    host = os.environ.get("MESHPLANE_LISTEN_ADDRESS") or "127.0.0.1"
    raw = os.environ.get("PORT") or str(PORT)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        log.error("invalid PORT %r: expected a port number", raw)
        return 2
    port = int(raw)
    version = os.environ.get("SERVICE_VERSION", "")
    instance = os.environ.get("HOSTNAME", "")
    asyncio.run(serve(host, port, version, instance))
    return 0
