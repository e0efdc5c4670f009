"""A fake grpc.aio servicer context: feed requests, gate and record writes (to test the ADS server
without a network, e.g. a proxy that stops reading)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc


class FakeContext:
    def __init__(self, peer: str = "ipv4:127.0.0.1:1") -> None:
        self._in: asyncio.Queue[Any] = asyncio.Queue()
        self._peer = peer
        self.written: list[bytes] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.aborted: tuple[grpc.StatusCode, str] | None = None
        self._changed = asyncio.Condition()

    def feed(self, request: Any) -> None:
        self._in.put_nowait(request)

    def end(self) -> None:
        self._in.put_nowait(grpc.aio.EOF)

    async def read(self) -> Any:
        return await self._in.get()

    async def write(self, data: bytes) -> None:
        await self.gate.wait()
        self.written.append(data)
        async with self._changed:
            self._changed.notify_all()

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError(code, details)  # type: ignore[call-arg]

    async def wait_written(self, count: int, within: float = 5.0) -> None:
        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.written) >= count)

        await asyncio.wait_for(_wait(), within)
