"""SPDY/3.1 framing, the server side of one session: what kubectl's port forwarding speaks.

kubectl 1.32 forwards ports over SPDY/3.1 streams (client-go tools/portforward, spdystream), either
over a raw upgraded connection or tunnelled in a WebSocket whose subprotocol is
`SPDY/3.1+portforward.k8s.io` (client-go tools/portforward/tunneling_dialer.go, KEP-4006); the lab
node speaks the tunnelled form. The framing is the SPDY/3.1 draft's
(https://www.chromium.org/spdy/spdy-protocol/spdy-protocol-draft3-1/): control frames (SYN_STREAM,
SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE) and data frames; header
blocks are zlib streams (one per direction for the whole session) primed with the draft's
dictionary (§2.6.10.1), rebuilt below from its definition: the length-prefixed words, then the
tail text. Like spdystream, no flow-control windows are kept (WINDOW_UPDATE is read and ignored).
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL = 5
MAX_FRAME = 16 * 1024 * 1024

_WORDS = (
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
)
_TAIL = (
    "1001012012022052063003023033043053063074024054064074084094104114124134144154164175025045"
    "05203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401"
    " Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 S"
    "ervice UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, We"
    "d, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xm"
    "l,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdc"
    "hcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(Exception):
    pass


def encode_headers(headers: dict[str, str]) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for k, v in headers.items():
        kb, vb = k.lower().encode(), v.encode()
        out += [struct.pack(">I", len(kb)), kb, struct.pack(">I", len(vb)), vb]
    return b"".join(out)


def decode_headers(raw: bytes) -> dict[str, str]:
    try:
        (n,) = struct.unpack_from(">I", raw, 0)
        pos, out = 4, {}
        for _ in range(n):
            (kl,) = struct.unpack_from(">I", raw, pos)
            k = raw[pos + 4 : pos + 4 + kl].decode()
            pos += 4 + kl
            (vl,) = struct.unpack_from(">I", raw, pos)
            out[k] = raw[pos + 4 : pos + 4 + vl].decode().split("\x00")[0]  # NUL separates values
            pos += 4 + vl
        return out
    except (struct.error, UnicodeDecodeError) as e:
        raise ProtocolError(f"bad header block: {e}") from e


def control(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data(stream_id: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


@dataclass
class Stream:
    id: int
    headers: dict[str, str]
    session: Session
    incoming: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)  # b"" = the peer's FIN
    closed_local: bool = False

    async def write(self, payload: bytes) -> None:
        if not self.closed_local:
            await self.session.send(data(self.id, 0, payload))

    async def close(self) -> None:
        """Half-close: a FIN (an empty data frame), as spdystream's Stream.Close."""
        if not self.closed_local:
            self.closed_local = True
            await self.session.send(data(self.id, FLAG_FIN, b""))

    async def read(self) -> bytes:
        return await self.incoming.get()


class Session:
    """A server session: `feed` it the peer's bytes; new streams go to `on_stream` (after their
    SYN_REPLY); frames are written through `write`."""

    def __init__(
        self, write: Callable[[bytes], Awaitable[None]], on_stream: Callable[[Stream], None]
    ) -> None:
        self._write = write
        self._on_stream = on_stream
        self._buf = b""
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)
        self._lock = asyncio.Lock()
        self.streams: dict[int, Stream] = {}
        self.goaway = False

    async def send(self, frame: bytes) -> None:
        async with self._lock:
            await self._write(frame)

    async def _reply(self, stream_id: int) -> None:
        async with self._lock:  # the compressor's state follows the order frames are written
            block = self._deflate.compress(encode_headers({})) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            await self._write(control(SYN_REPLY, 0, struct.pack(">I", stream_id) + block))

    async def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        while len(self._buf) >= 8:
            (word,) = struct.unpack_from(">I", self._buf, 4)
            flags, length = word >> 24, word & 0xFFFFFF
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes")
            if len(self._buf) < 8 + length:
                return
            head, payload = self._buf[:8], self._buf[8 : 8 + length]
            self._buf = self._buf[8 + length :]
            if head[0] & 0x80:
                await self._control(struct.unpack_from(">H", head, 2)[0], flags, payload)
            else:
                await self._data(struct.unpack_from(">I", head, 0)[0] & 0x7FFFFFFF, flags, payload)

    async def _control(self, kind: int, flags: int, payload: bytes) -> None:
        if kind == SYN_STREAM:
            sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            headers = decode_headers(self._inflate.decompress(payload[10:]))
            stream = Stream(sid, headers, self)
            self.streams[sid] = stream
            await self._reply(sid)
            if flags & FLAG_FIN:
                stream.incoming.put_nowait(b"")
            self._on_stream(stream)
        elif kind == HEADERS:
            self._inflate.decompress(payload[4:])  # keep the shared zlib state in step
        elif kind == RST_STREAM:
            sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            if (s := self.streams.pop(sid, None)) is not None:
                s.closed_local = True
                s.incoming.put_nowait(b"")
        elif kind == PING:
            await self.send(control(PING, 0, payload[:4]))
        elif kind == GOAWAY:
            self.goaway = True
        # SETTINGS, WINDOW_UPDATE: nothing to keep (no flow-control windows, as spdystream)

    async def _data(self, sid: int, flags: int, payload: bytes) -> None:
        s = self.streams.get(sid)
        if s is None:
            return
        if payload:
            s.incoming.put_nowait(payload)
        if flags & FLAG_FIN:
            s.incoming.put_nowait(b"")

    def close_all(self) -> None:
        for s in self.streams.values():
            s.closed_local = True
            s.incoming.put_nowait(b"")
