"""The floor: a minimal gRPC ADS server that only sends pre-serialized bytes.

Every response (one per type, for the current version) is serialized once up front; each stream
gets the bytes of a type when it first asks for it, and on `push()` every stream is sent the new
version's bytes, as fast as grpc.aio can write them. No generation, no per-stream state beyond a
queue: what is left is the cost of moving the bytes through gRPC on this machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"


class BaselineServer:
    def __init__(self, responses: Mapping[str, bytes], concurrency: int = 0) -> None:
        self.responses = dict(responses)  # type_url -> serialized response (SotW or Delta)
        self._queues: set[asyncio.Queue[bytes]] = set()
        self._server: grpc.aio.Server | None = None
        # streams writing at once (0: unbounded); ours writes 100 at a time (PILOT_PUSH_THROTTLE)
        self._limit = asyncio.Semaphore(concurrency) if concurrency > 0 else None

    def push(self, responses: Mapping[str, bytes], remember: bool = True) -> None:
        """Send these responses (in order) to every stream."""
        if remember:
            self.responses.update(responses)
        for q in self._queues:
            for data in responses.values():
                q.put_nowait(data)

    async def _stream(self, _requests: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> None:
        q: asyncio.Queue[bytes] = asyncio.Queue()
        self._queues.add(q)
        seen: set[str] = set()

        async def read() -> None:
            while True:
                req = await ctx.read()
                if req is grpc.aio.EOF:
                    return
                if req.type_url not in seen and req.type_url in self.responses:
                    seen.add(req.type_url)
                    q.put_nowait(self.responses[req.type_url])

        reader = asyncio.create_task(read())
        try:
            while not reader.done():
                getter = asyncio.create_task(q.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    if self._limit is None:
                        await ctx.write(getter.result())
                    else:
                        async with self._limit:
                            await ctx.write(getter.result())
                else:
                    getter.cancel()
        finally:
            self._queues.discard(q)
            reader.cancel()

    async def start(self, address: str) -> int:
        handlers = {
            "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self._stream, request_deserializer=discovery_pb2.DiscoveryRequest.FromString
            ),
            "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self._stream, request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString
            ),
        }
        server = grpc.aio.server(options=(("grpc.max_send_message_length", -1),))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        port = server.add_insecure_port(address)
        await server.start()
        self._server = server
        return port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0.5)
