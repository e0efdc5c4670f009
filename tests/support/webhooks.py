"""An HTTPS admission webhook served by the test itself, and the certificates it needs."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from meshplane.runtime.jsonobj import Obj
from tests.support import secpki

Responder = Callable[[Obj], Obj | Awaitable[Obj]]


@dataclass(frozen=True)
class Certs:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @property
    def ca_bundle(self) -> str:
        """The CA as a webhook's clientConfig.caBundle (base64 PEM)."""
        return base64.b64encode(self.ca_pem).decode()


def make_certs(dns_names: list[str], ips: list[str] = ("127.0.0.1",)) -> Certs:  # type: ignore[assignment]
    """A throwaway CA and a serving certificate it signed for the given names."""
    ca = secpki.CA("test webhook ca")
    pair = ca.issue(dns=tuple(dns_names), ips=tuple(ips))
    return Certs(ca_pem=ca.pem, cert_pem=pair.cert_pem, key_pem=pair.key_pem)


def allow(review: Obj, patch: list[Obj] | None = None) -> Obj:
    resp: Obj = {"uid": review["request"]["uid"], "allowed": True}
    if patch is not None:
        resp["patchType"] = "JSONPatch"
        resp["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp}


def deny(review: Obj, message: str, code: int = 403) -> Obj:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": review["request"]["uid"],
            "allowed": False,
            "status": {"code": code, "message": message},
        },
    }


@dataclass
class WebhookServer:
    """Serves POST on every path over TLS at 127.0.0.1:port; records each AdmissionReview and path."""

    certs: Certs
    respond: Responder
    host: str = "127.0.0.1"
    reviews: list[Obj] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.reviews.append(review)
        self.paths.append(request.path_qs)
        out = self.respond(review)
        if asyncio.iscoroutine(out) or isinstance(out, Awaitable):
            out = await out
        return web.json_response(out)

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as d:
            cert, key = Path(d, "tls.crt"), Path(d, "tls.key")
            cert.write_bytes(self.certs.cert_pem)
            key.write_bytes(self.certs.key_pem)
            ctx.load_cert_chain(cert, key)
        return ctx

    async def start(self) -> int:
        ctx = await asyncio.to_thread(self._ssl)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=ctx)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
