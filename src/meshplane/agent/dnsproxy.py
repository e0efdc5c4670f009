"""The agent's DNS proxy on port 15053, UDP and TCP (Istio's pkg/dns/server `LocalDNSServer`).

With DNS capture (`ISTIO_META_DNS_CAPTURE=true`), istio-init's `--redirect-dns` rules send the
pod's DNS queries (port 53, every process but the proxy's uid/gid) here. A name in the control
plane's NameTable (agent/dnstable.py) is answered at once; any other query is forwarded unchanged
to the nameservers of the pod's resolv.conf, in order, over the transport it came on (the proxy's
uid is exempt from capture, so the forwarded query leaves the pod), and their answer is returned
as is. When no nameserver answers (or resolv.conf names none) the reply is SERVFAIL. Before the
first NameTable arrives every query is forwarded. Listens on the pod's localhost address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Sequence
from typing import cast

from meshplane.agent import dnstable
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

PORT = 15053
UPSTREAM_TIMEOUT = 5.0


class DnsProxy:
    def __init__(self, host: str, upstreams: Sequence[str], port: int = PORT, log_id: str = "") -> None:
        self._host = host
        self._port = port
        self._upstreams = tuple(upstreams)
        self._log_id = log_id
        self.lookup = dnstable.Lookup({})
        self.tables = 0  # NameTables received
        self.answered = 0
        self.forwarded = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def update(self, lookup: dnstable.Lookup) -> None:
        self.lookup = lookup
        self.tables += 1

    async def respond(self, data: bytes, tcp: bool) -> bytes | None:
        """The reply to one query message (None for a message that is no query: dropped)."""
        try:
            q = dnstable.parse_query(data)
        except dnstable.DnsFormatError as e:
            log.debug("dns: bad query %s", kv(proxy=self._log_id, error=e))
            return None
        ips = self.lookup.resolve(q.name)
        if ips is not None:
            self.answered += 1
            return dnstable.answer(data, q, ips)
        self.forwarded += 1
        for server in self._upstreams:
            try:
                async with asyncio.timeout(UPSTREAM_TIMEOUT):
                    return await (_forward_tcp(server, data) if tcp else _forward_udp(server, data))
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                log.debug("dns: upstream failed %s", kv(proxy=self._log_id, upstream=server, error=e))
        return dnstable.error_response(data, q, dnstable.RCODE_SERVFAIL)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=(self._host, self._port)
        )
        self._tcp = await asyncio.start_server(self._serve_tcp, self._host, self._port)
        log.info(
            "dns proxy serving %s",
            kv(proxy=self._log_id, address=f"{self._host}:{self._port}", upstreams=",".join(self._upstreams)),
        )

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (n,) = struct.unpack("!H", await reader.readexactly(2))
                reply = await self.respond(await reader.readexactly(n), tcp=True)
                if reply is None:
                    return
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, proxy: DnsProxy) -> None:
        self._proxy = proxy
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.ensure_future(self._reply(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self._proxy.respond(data, tcp=False)
        if reply is not None and self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(reply, addr)


class _OneReply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _forward_udp(server: str, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_OneReply, remote_addr=(server, 53))
    try:
        transport.sendto(data)
        return await proto.reply
    finally:
        transport.close()


async def _forward_tcp(server: str, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(server, 53)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        (n,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(n)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
