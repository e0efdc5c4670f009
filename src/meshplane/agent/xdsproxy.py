"""Envoy's ADS goes to the agent on a unix socket; the agent carries it to the discovery address.

As in Istio's agent (pkg/istio-agent/xds_proxy.go): for every stream Envoy opens, the agent opens
one upstream stream over TLS with a freshly read token and the pod's cluster ID, and copies the
messages both ways as raw bytes (no re-parsing, so SotW and Delta pass alike). While the
discovery address is unreachable the Envoy stream is held open and the agent retries with
backoff; Envoy keeps serving its last config meanwhile and receives the buffered requests'
answers as soon as the upstream is back. When an established upstream stream ends, the Envoy
stream ends with the same status and Envoy reconnects, which opens a new upstream stream.

With DNS capture the agent also subscribes to Istio's NameTable on each upstream stream, after
Envoy's first request (which carries the node), as Istio's agent does: NameTable responses are
recognised by their type URL (read without decoding the rest), handed to the DNS proxy, ACKed by
the agent and never sent to Envoy, which does not know the type.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from meshplane.agent import errors, ndsproto, uds, upstream
from meshplane.runtime import backoff
from meshplane.runtime import clock as runclock
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
METHODS = ("StreamAggregatedResources", "DeltaAggregatedResources")
_CONNECT_TIMEOUT = 5.0


class XdsProxy:
    def __init__(
        self,
        target: upstream.Upstream,
        address: uds.UdsAddress,
        *,
        clock: runclock.Clock,
        retry: Callable[[], backoff.Backoff] = lambda: backoff.Backoff(initial=0.2, maximum=5.0),
        log_id: str = "",
        on_name_table: Callable[[Any], None] | None = None,
    ) -> None:
        self._target = target
        self._on_name_table = on_name_table
        self._address = address
        self._clock = clock
        self._retry = retry
        self._log_id = log_id
        self._server: grpc.aio.Server | None = None
        self._ids = itertools.count(1)
        self.upstream_connects = 0
        self.upstream_failures = 0
        self.active_streams = 0

    async def start(self) -> None:
        self._address.prepare()
        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        handlers = {
            name: grpc.stream_stream_rpc_method_handler(self._handler(f"/{SERVICE}/{name}"))
            for name in METHODS
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_insecure_port(self._address.grpc_target)
        await server.start()
        self._server = server
        log.info(
            "xds proxy serving %s",
            kv(proxy=self._log_id, socket=self._address.envoy_pipe, discovery=self._target.address),
        )

    async def stop(self, grace: float = 0.5) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self._address.cleanup()

    def _handler(self, method: str) -> Callable[[AsyncIterator[bytes], Any], Any]:
        async def handle(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
            await self._proxy(method, requests, context)

        return handle

    async def _proxy(
        self, method: str, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> None:
        sid = next(self._ids)
        kind = "delta" if "Delta" in method else "sotw"
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        reader = asyncio.create_task(_pump_requests(requests, queue))
        channel: grpc.aio.Channel | None = None
        self.active_streams += 1
        try:
            channel = await self._connect(sid, reader)
            if channel is None:
                return
            metadata = upstream.call_metadata(self._target)
            call = channel.stream_stream(method)(metadata=metadata)
            self.upstream_connects += 1
            log.info("xds stream open %s", kv(proxy=self._log_id, stream=sid, kind=kind))
            delta = kind == "delta"
            first = _subscribe_nds(delta) if self._on_name_table is not None else None
            up = asyncio.create_task(_upload(queue, call, first))
            try:
                while True:
                    msg = await call.read()
                    if msg is grpc.aio.EOF:
                        break
                    if self._on_name_table is not None and _type_url(msg) == ndsproto.TYPE_URL:
                        # decoding and indexing a large table is CPU work: off the event loop
                        queue.put_nowait(await asyncio.to_thread(self._name_table, msg, delta))
                        continue
                    await context.write(msg)
            except grpc.aio.AioRpcError:
                pass
            finally:
                up.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await up
            code = await call.code()
            details = await call.details()
            log.warning(
                "xds upstream stream ended %s",
                kv(proxy=self._log_id, stream=sid, kind=kind, code=code.name, details=details or None),
            )
            context.set_code(grpc.StatusCode.UNAVAILABLE if code == grpc.StatusCode.OK else code)
            context.set_details(f"upstream {self._target.address}: {details or code.name}")
        except errors.AgentError as e:
            context.set_code(grpc.StatusCode.UNAVAILABLE)
            context.set_details(str(e))
        finally:
            self.active_streams -= 1
            reader.cancel()
            if channel is not None:
                await channel.close()

    def _name_table(self, raw: bytes, delta: bool) -> bytes:
        """Hand a NameTable response to the DNS proxy; the ACK (or NACK) to send upstream."""
        assert self._on_name_table is not None
        resp: Any = discovery_pb2.DeltaDiscoveryResponse() if delta else discovery_pb2.DiscoveryResponse()
        error = ""
        try:
            resp.ParseFromString(raw)
            bodies = [r.resource for r in resp.resources] if delta else list(resp.resources)
            for body in bodies[:1]:
                table = ndsproto.NameTable()
                if not body.Unpack(table):
                    raise ValueError(f"resource of type {body.type_url}")
                self._on_name_table(table)
        except Exception as e:  # a bad table keeps the last good one: NACK it
            error = f"name table rejected: {e}"
            log.warning("xds NameTable rejected %s", kv(proxy=self._log_id, error=e))
        req: Any
        if delta:
            req = discovery_pb2.DeltaDiscoveryRequest(type_url=ndsproto.TYPE_URL, response_nonce=resp.nonce)
        else:
            req = discovery_pb2.DiscoveryRequest(
                type_url=ndsproto.TYPE_URL, version_info=resp.version_info, response_nonce=resp.nonce
            )
        if error:
            req.error_detail.code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
            req.error_detail.message = error
            if not delta:
                req.version_info = ""
        data: bytes = req.SerializeToString()
        return data

    async def _connect(self, sid: int, reader: asyncio.Task[None]) -> grpc.aio.Channel | None:
        """Connect with backoff while Envoy's stream is open; None once Envoy has gone."""
        delays = self._retry()
        while not reader.done():
            try:
                upstream.read_token(self._target.token_path)
                return await upstream.connect(self._target, _CONNECT_TIMEOUT)
            except errors.AgentError as e:
                self.upstream_failures += 1
                delay = delays.next()
                log.warning(
                    "xds upstream unavailable %s",
                    kv(proxy=self._log_id, stream=sid, error=e, retry_in=f"{delay:.2f}s"),
                )
                await _sleep_until(self._clock, delay, reader)
        return None


async def _sleep_until(clock: runclock.Clock, delay: float, done: asyncio.Task[None]) -> None:
    sleeper = asyncio.ensure_future(clock.sleep(delay))
    try:
        await asyncio.wait({sleeper, done}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()


async def _pump_requests(requests: AsyncIterator[bytes], queue: asyncio.Queue[bytes | None]) -> None:
    """Envoy's messages into the queue; None marks the end of Envoy's side."""
    try:
        async for msg in requests:
            await queue.put(msg)
    except (grpc.aio.AioRpcError, asyncio.CancelledError):
        pass
    finally:
        queue.put_nowait(None)


async def _upload(queue: asyncio.Queue[bytes | None], call: Any, after_first: bytes | None = None) -> None:
    """Envoy's requests (and the agent's own) upstream; `after_first` follows Envoy's first request."""
    while True:
        msg = await queue.get()
        if msg is None:
            await call.done_writing()
            return
        await call.write(msg)
        if after_first is not None:
            await call.write(after_first)
            after_first = None


def _subscribe_nds(delta: bool) -> bytes:
    req: Any = (
        discovery_pb2.DeltaDiscoveryRequest(type_url=ndsproto.TYPE_URL)
        if delta
        else discovery_pb2.DiscoveryRequest(type_url=ndsproto.TYPE_URL)
    )
    data: bytes = req.SerializeToString()
    return data


def _type_url(raw: bytes) -> str:
    """Field 4 (type_url) of a (Delta)DiscoveryResponse, skipping the other fields undecoded."""
    i, n = 0, len(raw)

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while i < n:
            b = raw[i]
            i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise ValueError("truncated varint")

    try:
        while i < n:
            key = varint()
            field, wire = key >> 3, key & 7
            if wire == 0:
                varint()
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            elif wire == 2:
                length = varint()
                if field == 4:
                    return raw[i : i + length].decode("utf-8", "replace")
                i += length
            else:
                return ""
    except ValueError:
        return ""
    return ""
