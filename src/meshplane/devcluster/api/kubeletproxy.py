"""The API server's proxy to a node's kubelet, as kube-apiserver proxies pod subresources.

kube-apiserver reaches the kubelet of the pod's node at one of the Node's status.addresses and
the port of status.daemonEndpoints.kubeletEndpoint (pkg/kubelet/client/kubelet_client.go
`NodeConnectionInfoGetter`; the address types tried in --kubelet-preferred-address-types order,
here InternalIP, ExternalIP, Hostname), authenticating with its kubelet client certificate
(`pki.kubelet_client_ssl_context`). The dev cluster knows nothing else of what runs its pods.

- `stream_get` a plain GET (containerLogs) streamed back to the client as it arrives;
- `relay_websocket` a WebSocket upgrade (exec, attach): the client's offered subprotocols go to
  the kubelet, the client is upgraded with the one the kubelet chose, and every message is
  relayed both ways until either side closes (kube-apiserver's UpgradeAwareHandler proxies the
  same frames as bytes).
A kubelet's refusal before the upgrade (its status and text, which the lab's kubelet also puts in
the `X-Kubelet-Error` header because a refused WebSocket handshake drops its body) becomes the
client's Status error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web

from meshplane.devcluster import errors
from meshplane.devcluster.api import context
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

ERROR_HEADER = "X-Kubelet-Error"
ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")
_REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 503: "ServiceUnavailable"}


def endpoint(ctx: context.ApiContext, pod: Obj) -> str:
    """https://ADDRESS:PORT of the kubelet running `pod`; 400 when it has no node (yet)."""
    name = str((pod.get("metadata") or {}).get("name") or "")
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    node = ctx.store.peek("nodes", "", node_name)
    if node is None:
        raise errors.not_found("nodes", "", node_name)
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    address = next((addresses[t] for t in ADDRESS_TYPES if addresses.get(t)), None)
    if not port or not address:
        raise errors.ApiError(
            503,
            f'node "{node_name}" reports no kubelet endpoint (status.daemonEndpoints.kubeletEndpoint'
            " and status.addresses)",
            "ServiceUnavailable",
        )
    host = f"[{address}]" if ":" in str(address) else str(address)
    return f"https://{host}:{int(port)}"


def url(base: str, path: str, *parts: str) -> str:
    return base + path + "".join("/" + quote(p, safe="") for p in parts)


def _session(ctx: context.ApiContext) -> aiohttp.ClientSession:
    if ctx.kubelet_tls is None:
        raise errors.ApiError(503, "the API server has no kubelet client credentials", "ServiceUnavailable")
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ctx.kubelet_tls),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
    )


def _backend_error(status: int, text: str) -> errors.ApiError:
    if status in _REASONS:
        return errors.ApiError(status, text.strip() or f"kubelet answered {status}", _REASONS[status])
    return errors.ApiError(500, f"error from the kubelet: {status} {text.strip()}", "InternalError")


def _dial_error(target: str, e: Exception) -> errors.ApiError:
    return errors.ApiError(500, f"error dialing backend: {target}: {e}", "InternalError")


async def stream_get(ctx: context.ApiContext, request: web.Request, target: str) -> web.StreamResponse:
    """GET `target` on the kubelet and stream its text body to the client."""
    async with _session(ctx) as session:
        try:
            upstream = await session.get(target)
        except (aiohttp.ClientError, OSError) as e:
            raise _dial_error(target.split("?")[0], e) from e
        async with upstream:
            if upstream.status != 200:
                raise _backend_error(upstream.status, await upstream.text(errors="replace"))
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            if upstream.content_length is not None:
                resp.content_length = upstream.content_length
            await resp.prepare(request)
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp


NO_PROTOCOL = "no supported WebSocket subprotocol offered"
_PROBE = "meshplane.probe"


async def probe(ctx: context.ApiContext, target: str) -> None:
    """Ask the kubelet whether it would serve an upgrade at `target`, without upgrading (no
    protocol it speaks is offered, so it starts nothing): raise its refusal, if any. Used to give
    a SPDY request, which kubectl sends after a refused WebSocket upgrade, the kubelet's reason."""
    async with _session(ctx) as session:
        try:
            ws = await session.ws_connect(target, protocols=[_PROBE])
        except aiohttp.WSServerHandshakeError as e:
            text = (e.headers.get(ERROR_HEADER) if e.headers else None) or e.message
            if not text.startswith(NO_PROTOCOL):
                raise _backend_error(e.status, text) from e
            return
        except (aiohttp.ClientError, OSError) as e:
            raise _dial_error(target.split("?")[0], e) from e
        await ws.close()  # not expected: it accepted a protocol it does not speak


def offered_protocols(request: web.Request) -> list[str]:
    return [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")]


async def relay_websocket(ctx: context.ApiContext, request: web.Request, target: str) -> web.StreamResponse:
    """Upgrade to the kubelet at `target` first, then the client with the same subprotocol."""
    async with _session(ctx) as session:
        try:
            upstream = await session.ws_connect(
                target, protocols=offered_protocols(request), autoping=True, max_msg_size=0
            )
        except aiohttp.WSServerHandshakeError as e:
            text = (e.headers.get(ERROR_HEADER) if e.headers else None) or e.message
            raise _backend_error(e.status, text) from e
        except (aiohttp.ClientError, OSError) as e:
            raise _dial_error(target.split("?")[0], e) from e
        async with upstream:
            protocols = (upstream.protocol,) if upstream.protocol else ()
            client = web.WebSocketResponse(protocols=protocols, autoping=True, max_msg_size=0)
            await client.prepare(request)
            await _pipe(client, upstream)
            return client


async def _pipe(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    async def down() -> None:  # kubelet → client
        async for msg in upstream:
            if msg.type == WSMsgType.BINARY:
                await client.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await client.send_str(msg.data)
        await client.close()

    async def up() -> None:  # client → kubelet
        async for msg in client:
            if msg.type == WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await upstream.send_str(msg.data)
        await upstream.close()

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if (exc := t.exception()) is not None and not isinstance(exc, ConnectionError):
                log.warning("exec/attach relay ended with error=%s", exc)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await t
        if not client.closed:
            await client.close()
