"""The Aggregated Discovery Service: StreamAggregatedResources (SotW) and DeltaAggregatedResources.

Each stream: the first request's node becomes a `Proxy` (a malformed one closes only this stream
with INVALID_ARGUMENT), the optional `auth` hook runs before anything is sent, then one task
answers requests and pushes in turn. Pushes come from the push queue through `push()`; each
connection coalesces them and generates with bounded concurrency (`push_concurrency` streams at a
time, Istio's PILOT_PUSH_THROTTLE) on one generation thread so the event loop stays responsive. A
write that takes longer than `send_timeout` closes that stream only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2, discovery_pb2

from meshplane.model import proxy as proxy_mod
from meshplane.model.ids import ClusterId
from meshplane.push import context, metrics, pending, propagation
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import logging as rlog
from meshplane.runtime import tasks
from meshplane.server import connection, errors, node, respond, watch, wire
from meshplane.xds import resources

log = logging.getLogger(__name__)

SERVICE = ads_pb2.DESCRIPTOR.services_by_name["AggregatedDiscoveryService"].full_name

# The security helper's hook: awaited with the stream's context and parsed proxy before anything
# is sent; it may `await context.abort(UNAUTHENTICATED | PERMISSION_DENIED, ...)` or raise
# `errors.StreamRejected`.
XdsAuth = Callable[[grpc.aio.ServicerContext[Any, Any], proxy_mod.Proxy], Awaitable[None]]


def _envoy_version(n: base_pb2.Node) -> str:
    if n.HasField("user_agent_build_version") and n.user_agent_build_version.HasField("version"):
        v = n.user_agent_build_version.version
        return f"{v.major_number}.{v.minor_number}.{v.patch}"
    return ""


class AdsServer:
    def __init__(
        self,
        generator: respond.Generator,
        *,
        metrics: metrics.Metrics,
        cluster_id: ClusterId,
        clock: clock_mod.Clock | None = None,
        auth: XdsAuth | None = None,
        push_concurrency: int = 100,
        send_timeout: float = 30.0,
        tracker: propagation.Tracker | None = None,
    ) -> None:
        if push_concurrency < 1:
            raise ValueError(f"push_concurrency must be at least 1, got {push_concurrency}")
        self._gen = generator
        self._metrics = metrics
        self._cluster_id = cluster_id
        self._clock = clock or clock_mod.SystemClock()
        # change → last proxy's ACK (meshplane_config_propagation_seconds, pilot_proxy_convergence_time)
        self.propagation = tracker or propagation.Tracker(metrics, self._clock)
        self.auth = auth
        self._send_timeout = send_timeout
        self._concurrency = push_concurrency
        self._throttle: asyncio.Semaphore | None = None
        self._encoder = wire.Encoder()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="xds-gen")
        self._ctx: context.PushContext | None = None
        self._ready: asyncio.Event | None = None
        self._connections: dict[str, connection.Connection] = {}
        self._closing = False
        self._warming: dict[str, asyncio.Future[Any]] = {}
        self._idle: asyncio.Event | None = None

    # --- the push queue's target -------------------------------------------------------------
    @property
    def current(self) -> context.PushContext | None:
        """The PushContext of the latest push (what new requests are answered from)."""
        return self._ctx

    def push(self, ctx: context.PushContext, request: context.PushRequest) -> int:
        self._ctx = ctx
        self._ready_event().set()
        now = self._clock.monotonic()
        self.propagation.fanout(request.origins, self._connections)
        for conn in self._connections.values():
            conn.pending.offer(ctx, request, now)
            conn.wake.set()
        return len(self._connections)

    @property
    def connections(self) -> list[connection.Connection]:
        return list(self._connections.values())

    def syncz(self) -> list[dict[str, Any]]:
        return [c.syncz() for c in sorted(self._connections.values(), key=lambda c: c.id)]

    @property
    def encoder(self) -> wire.Encoder:
        return self._encoder

    async def shutdown(self, grace: float) -> None:
        """End every stream cleanly (status OK, proxies reconnect elsewhere) within `grace` seconds."""
        self._closing = True
        self._ready_event().set()
        for conn in self._connections.values():
            conn.wake.set()
        if self._connections:
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- grpc wiring -------------------------------------------------------------------------
    def rpc_handler(self) -> grpc.GenericRpcHandler:
        """The ADS service with raw-bytes responses (see `wire`); requests are parsed by grpc."""
        handlers = {
            "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self.stream_aggregated_resources,
                request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                response_serializer=None,
            ),
            "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self.delta_aggregated_resources,
                request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                response_serializer=None,
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE, handlers)

    async def stream_aggregated_resources(
        self, _requests: Any, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await self._handle(ctx, delta=False)

    async def delta_aggregated_resources(
        self, _requests: Any, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await self._handle(ctx, delta=True)

    # --- one stream --------------------------------------------------------------------------
    def _ready_event(self) -> asyncio.Event:
        if self._ready is None:
            self._ready = asyncio.Event()
        return self._ready

    async def _handle(self, ctx: grpc.aio.ServicerContext[Any, Any], delta: bool) -> None:
        peer = ctx.peer() or ""
        first = await ctx.read()
        if first is grpc.aio.EOF:
            return
        try:
            proxy = node.parse(first.node if first.HasField("node") else None, self._cluster_id)
            if self.auth is not None:
                await self.auth(ctx, proxy)
        except errors.StreamRejected as e:
            log.warning("ADS: stream rejected %s", rlog.kv(peer=peer, code=e.code.name, reason=e.message))
            await ctx.abort(e.code, e.message)
            return
        stream = _GrpcStream(ctx)
        conn = connection.Connection(
            proxy, delta, peer, stream, self._clock.wall(), _envoy_version(first.node)
        )
        self._connections[conn.id] = conn
        self._metrics.xds_clients.labels(version=conn.istio_version).inc()
        log.info(
            "ADS: new connection %s",
            rlog.kv(proxy=proxy.id, cluster=proxy.cluster_id, conn=conn.id, delta=delta, peer=peer),
        )
        reader = tasks.guarded(self._read(ctx, conn), f"ads-read/{conn.id}")
        conn.deliver(first)
        try:
            await self._serve(conn)
        except errors.StreamRejected as e:
            log.warning("ADS: closing stream %s", rlog.kv(proxy=proxy.id, conn=conn.id, reason=e.message))
            await ctx.abort(e.code, e.message)
        finally:
            del self._connections[conn.id]
            self.propagation.gone(conn.id)
            if self._idle is not None and not self._connections:
                self._idle.set()
            self._metrics.xds_clients.labels(version=conn.istio_version).dec()
            await tasks.cancel(reader)
            log.info(
                "ADS: connection closed %s", rlog.kv(proxy=proxy.id, cluster=proxy.cluster_id, conn=conn.id)
            )

    async def _read(self, ctx: grpc.aio.ServicerContext[Any, Any], conn: connection.Connection) -> None:
        try:
            while True:
                req = await ctx.read()
                if req is grpc.aio.EOF:
                    conn.reader_stopped(None)
                    return
                conn.deliver(req)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the stream broke (client gone, bad message): end this stream only
            conn.reader_stopped(e)

    async def _serve(self, conn: connection.Connection) -> None:
        await self._ready_event().wait()
        while not self._closing:
            await conn.wake.wait()
            conn.wake.clear()
            while conn.inbox and not self._closing:
                await self._process(conn, conn.inbox.popleft())
            if conn.reader_done or self._closing:
                return
            push = conn.pending.take()
            if push is not None:
                await self._push(conn, push, self.propagation.take(conn.id))

    async def _process(self, conn: connection.Connection, req: connection.Request) -> None:
        type_url = req.type_url
        if type_url not in resources.GENERATED_TYPES:
            log.debug(
                "ADS: ignoring request for unserved type %s", rlog.kv(proxy=conn.proxy.id, type=type_url)
            )
            return
        short = connection.short_type(type_url)
        now = self._clock.wall()
        if isinstance(req, discovery_pb2.DeltaDiscoveryRequest):
            decision = watch.delta_request(conn.states, req, now)
        else:
            decision = watch.sotw_request(conn.states, req, now)
        if decision.kind is watch.Kind.NACK:
            code = grpc.StatusCode.UNKNOWN.name
            for c in grpc.StatusCode:
                if c.value[0] == req.error_detail.code:
                    code = c.name
            log.warning(
                "ADS: NACK %s",
                rlog.kv(
                    proxy=conn.proxy.id,
                    cluster=conn.proxy.cluster_id,
                    type=short,
                    nonce=req.response_nonce,
                    error=repr(req.error_detail.message),
                ),
            )
            self._metrics.record_reject(short, conn.proxy.id, code)
            self.propagation.nacked(conn.id, short)
        elif decision.kind is watch.Kind.STALE:
            self._metrics.expired_nonce.labels(type=short).inc()
            log.debug(
                "ADS: stale nonce %s", rlog.kv(proxy=conn.proxy.id, type=short, nonce=req.response_nonce)
            )
        elif decision.kind in (watch.Kind.ACK, watch.Kind.CHANGE) and req.response_nonce:
            acked = conn.states.get(type_url)
            if acked is not None and acked.nonce_acked == req.response_nonce:
                self.propagation.acked(conn.id, short)
        if not decision.respond or self._ctx is None:
            return
        st = conn.states[type_url]
        if decision.kind is watch.Kind.INIT:
            step = respond.Step(type_url, must_respond=True)
        elif conn.delta and decision.added and not st.wildcard:
            step = respond.Step(type_url, scope=decision.added)
        else:
            step = respond.Step(type_url)
        ctx = self._ctx
        build = functools.partial(
            respond.build, self._gen, self._encoder, conn.proxy, ctx, conn.delta, conn.states, [step]
        )
        await self._send(conn, build, ctx)

    async def _push(
        self, conn: connection.Connection, push: pending.Push, flights: list[propagation.Flight]
    ) -> None:
        request, ctx = push.request, push.ctx
        sent: set[str] = set()
        self._metrics.queue_time.observe(max(0.0, self._clock.monotonic() - push.enqueued))
        if request.full:
            build = functools.partial(
                respond.build_push,
                self._gen,
                self._encoder,
                conn.proxy,
                ctx,
                conn.delta,
                conn.states,
                request,
                conn.inbound_signature,
            )
            sent = await self._send(conn, build, ctx)
        else:
            # Endpoint-only: a few small resources per proxy, cheaper to build here than to hop to
            # the generation thread, once the push's shared index is built there (`_warm`).
            await self._warm(conn.proxy, ctx)
            steps = respond.plan_push(
                self._gen, conn.proxy, ctx, conn.states, request, conn.inbound_signature
            )
            if not steps:
                self.propagation.sent(conn.id, flights, ())
                return
            build = functools.partial(
                respond.build, self._gen, self._encoder, conn.proxy, ctx, conn.delta, conn.states, steps
            )
            inline = all(s.type_url == resources.TYPE_EDS for s in steps)
            sent = await self._send(conn, build, ctx, inline=inline)
        conn.last_push_version = ctx.version
        # pilot_proxy_convergence_time and the propagation SLI end at the ACKs of what was sent
        self.propagation.sent(conn.id, flights, sent, request.start)

    async def _warm(self, proxy: proxy_mod.Proxy, ctx: context.PushContext) -> None:
        """Build what every proxy's plan needs for this snapshot (the generator's inbound index)
        once, on the generation thread; the other connections wait for that one."""
        warming = self._warming.get(ctx.version)
        if warming is None:
            loop = asyncio.get_running_loop()
            try:
                warming = loop.run_in_executor(self._executor, self._gen.inbound_signature, proxy, ctx)
            except RuntimeError:  # the executor is shut down: the server is closing
                return
            self._warming = {ctx.version: warming}
        with contextlib.suppress(Exception):
            await asyncio.shield(warming)

    async def _send(
        self,
        conn: connection.Connection,
        build: Callable[[], respond.Built],
        ctx: context.PushContext,
        inline: bool = False,
    ) -> set[str]:
        """Generate (on the generation thread unless `inline`) and write, `push_concurrency` at a time;
        return the short types written."""
        if self._throttle is None:
            self._throttle = asyncio.Semaphore(self._concurrency)
        async with self._throttle:
            t0 = time.perf_counter()
            try:
                if not inline:
                    built = await asyncio.get_running_loop().run_in_executor(self._executor, build)
                else:
                    built = build()
            except Exception:
                # A generator bug must not take the stream down: the proxy keeps its config.
                self._metrics.internal_errors.inc()
                log.exception("ADS: generation failed %s", rlog.kv(proxy=conn.proxy.id, version=ctx.version))
                return set()
            if built.signature is not None:
                conn.inbound_signature = built.signature
            gen_each = (time.perf_counter() - t0) / max(1, len(built.outgoing))
            written: set[str] = set()
            for out in built.outgoing:
                if await self._write(conn, out, gen_each):
                    written.add(connection.short_type(out.type_url))
            return written

    async def _write(self, conn: connection.Connection, out: respond.Outgoing, gen_seconds: float) -> bool:
        short = connection.short_type(out.type_url)
        per_type = self._metrics.for_type(short)
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(self._send_timeout if self._send_timeout > 0 else None):
                await conn.stream.write(out.data)
        except TimeoutError:
            self._metrics.write_timeouts.inc()
            per_type.send_errors.inc()
            raise errors.StreamRejected(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"timeout writing {short.upper()} after {self._send_timeout:g}s",
            ) from None
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, RuntimeError) as e:
            per_type.send_errors.inc()
            log.info("ADS: send failed %s", rlog.kv(proxy=conn.proxy.id, type=short, error=repr(e)))
            conn.reader_stopped(e)
            return False
        sent = time.perf_counter() - t0
        st = conn.states.get(out.type_url)
        if st is not None:
            respond.commit(st, out, conn.delta, self._clock.wall())
        self._metrics.send_time.observe(sent)
        per_type.push_time.observe(sent + gen_seconds)
        per_type.pushes.inc()
        per_type.config_size.observe(len(out.data))
        log.debug(
            "ADS: sent %s",
            rlog.kv(
                proxy=conn.proxy.id,
                type=short,
                resources=len(out.sent),
                removed=len(out.removed) or None,
                bytes=len(out.data),
                nonce=out.nonce,
                version=out.version,
            ),
        )
        return True


class _GrpcStream:
    __slots__ = ("_ctx",)

    def __init__(self, ctx: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._ctx = ctx

    async def write(self, data: bytes) -> None:
        await self._ctx.write(data)
