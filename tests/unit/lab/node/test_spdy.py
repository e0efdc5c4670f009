"""The SPDY/3.1 server session kubectl's port forwarding talks to (frames as spdystream writes them)."""

from __future__ import annotations

import asyncio
import struct
import zlib

from meshplane.lab.node import spdy


def syn_stream(deflate: zlib._Compress, sid: int, headers: dict[str, str], flags: int = 0) -> bytes:
    block = deflate.compress(spdy.encode_headers(headers)) + deflate.flush(zlib.Z_SYNC_FLUSH)
    return spdy.control(spdy.SYN_STREAM, flags, struct.pack(">IIBB", sid, 0, 0, 0) + block)


def test_streams_replies_data_fin_and_ping_across_split_chunks() -> None:
    async def main() -> tuple[list[bytes], list[spdy.Stream], list[bytes]]:
        written: list[bytes] = []
        streams: list[spdy.Stream] = []

        async def write(b: bytes) -> None:
            written.append(b)

        session = spdy.Session(write, streams.append)
        client = zlib.compressobj(zdict=spdy.DICTIONARY)
        wire = (
            syn_stream(client, 1, {"streamType": "error", "port": "80", "requestID": "0"}, spdy.FLAG_FIN)
            + syn_stream(client, 3, {"streamType": "data", "port": "80", "requestID": "0"})
            + spdy.data(3, 0, b"hello")
            + spdy.data(3, spdy.FLAG_FIN, b"")
            + spdy.control(spdy.PING, 0, struct.pack(">I", 7))
        )
        for i in range(0, len(wire), 5):  # frames arrive in pieces
            await session.feed(wire[i : i + 5])
        got = [await streams[1].read(), await streams[1].read()]
        await streams[1].write(b"back")
        await streams[1].close()
        return written, streams, got

    written, streams, got = asyncio.run(main())
    assert [s.headers for s in streams] == [
        {"streamtype": "error", "port": "80", "requestid": "0"},
        {"streamtype": "data", "port": "80", "requestid": "0"},
    ]
    assert got == [b"hello", b""]  # the data, then the client's FIN
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    replies = [w for w in written if w[:4] == spdy.control(spdy.SYN_REPLY, 0, b"")[:4]]
    assert [struct.unpack_from(">I", r, 8)[0] for r in replies] == [1, 3]
    assert spdy.decode_headers(inflate.decompress(replies[0][12:])) == {}
    assert spdy.control(spdy.PING, 0, struct.pack(">I", 7)) in written
    assert written[-2:] == [spdy.data(3, 0, b"back"), spdy.data(3, spdy.FLAG_FIN, b"")]


def test_the_dictionary_is_the_drafts() -> None:
    # SPDY/3 §2.6.10.1: 1423 bytes, starting with the length-prefixed "options"
    assert len(spdy.DICTIONARY) == 1423 and spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
