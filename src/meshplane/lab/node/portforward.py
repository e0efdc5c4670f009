"""Port forwarding into a pod, the kubelet's side of `kubectl port-forward`.

kubectl 1.32 opens a WebSocket with the subprotocol `SPDY/3.1+portforward.k8s.io` and runs a SPDY
session in it (`spdy`). For each local connection it creates two streams with the same
`requestID` and `port` headers: `streamType: error` (which it half-closes at once and reads to its
end: any text there is an error) and `streamType: data` (the connection's bytes both ways).
The kubelet (pkg/kubelet/cri/streaming/portforward/httpstream.go) connects to the port and copies;
when the pod's side closes, both streams are closed, which ends the client's copy.

The lab node connects to the pod's IP from the node, where a kubelet's runtime connects to
`localhost:PORT` inside the pod's network namespace: a port that a pod binds to its own 127.0.0.1
only is not reachable here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSMsgType, web

from meshplane.lab.node import spdy

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"


async def serve(request: web.Request, pod: str, pod_ip: str) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), autoping=True, max_msg_size=0)
    await ws.prepare(request)
    pending: dict[str, dict[str, spdy.Stream]] = {}
    running: set[asyncio.Task[None]] = set()

    def on_stream(s: spdy.Stream) -> None:
        pair = pending.setdefault(s.headers.get("requestid", ""), {})
        pair[s.headers.get("streamtype", "")] = s
        if "data" in pair and "error" in pair:
            pending.pop(s.headers.get("requestid", ""), None)
            t = asyncio.create_task(_forward(pair["data"], pair["error"], pod, pod_ip))
            running.add(t)
            t.add_done_callback(running.discard)

    session = spdy.Session(ws.send_bytes, on_stream)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await session.feed(msg.data)
    except spdy.ProtocolError as e:
        log.warning("port forward: %s pod=%s", e, pod)
    finally:
        session.close_all()
        for t in list(running):
            t.cancel()
        for t in list(running):
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if not ws.closed:
            await ws.close()
    return ws


async def _forward(data: spdy.Stream, error: spdy.Stream, pod: str, pod_ip: str) -> None:
    raw = data.headers.get("port", "")
    try:
        port = int(raw)
        if not 0 < port < 65536:
            raise ValueError(raw)
        reader, writer = await asyncio.open_connection(pod_ip, port)
    except (ValueError, OSError) as e:
        what = e if isinstance(e, OSError) else f"invalid port {raw!r}"
        await error.write(f"error forwarding port {raw} to pod {pod}: {what}".encode())
        await error.close()
        await data.close()
        return

    async def up() -> None:  # client → pod
        while chunk := await data.read():
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.create_task(up())
    try:
        while chunk := await reader.read(64 * 1024):
            await data.write(chunk)
    except OSError:
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await sender
        writer.close()
        await data.close()
        await error.close()
