"""The CRI log format the lab's containers are logged in, and the kubelet's read options."""

from __future__ import annotations

import asyncio
from pathlib import Path

from meshplane.lab.node import containerlog as cl

T0 = 1_765_000_000_000_000_000


def _file(tmp_path: Path, *lines: tuple[int, str, bool, bytes]) -> Path:
    p = tmp_path / "app.log"
    p.write_bytes(b"".join(cl.encode(s, data, partial, T0 + i) for i, s, partial, data in lines))
    return p


def test_lines_are_written_in_the_cri_format_and_long_ones_split() -> None:
    clock = iter(range(T0, T0 + 100))
    split = cl.LineSplitter("stderr", lambda: next(clock))
    assert split.feed(b"one\ntw") == b"2025-12-06T05:46:40.000000000Z stderr F one\n"
    assert split.feed(b"o\n") == b"2025-12-06T05:46:40.000000001Z stderr F two\n"
    long = split.feed(b"x" * (cl.MAX_LINE + 5))
    assert long.count(b" P ") == 1 and long.endswith(b"x" * cl.MAX_LINE + b"\n")
    assert split.flush().endswith(b" stderr P xxxxx\n")


def test_tail_since_timestamps_and_limit(tmp_path: Path) -> None:
    p = _file(
        tmp_path,
        (0, "stdout", False, b"first"),
        (1, "stderr", True, b"sec"),
        (2, "stderr", False, b"ond"),
        (3, "stdout", False, b"third"),
    )
    assert cl.read(p, cl.Options()) == b"first\nsecond\nthird\n"
    assert cl.read(p, cl.Options(tail_lines=2)) == b"second\nthird\n"  # a partial entry is one line
    assert cl.read(p, cl.Options(tail_lines=0)) == b""
    assert cl.read(p, cl.Options(since_ns=T0 + 3)) == b"third\n"
    assert cl.read(p, cl.Options(limit_bytes=8)) == b"first\nse"
    stamped = cl.read(p, cl.Options(tail_lines=1, timestamps=True))
    assert stamped == cl.timestamp(T0 + 3).encode() + b" third\n"
    assert cl.parse_timestamp(cl.timestamp(T0 + 3)) == T0 + 3


def test_rotation_keeps_the_previous_instance(tmp_path: Path) -> None:
    p = _file(tmp_path, (0, "stdout", False, b"old"))
    cl.rotate(p)
    assert not p.exists() and cl.read(cl.previous_of(p), cl.Options()) == b"old\n"


def test_follow_reads_what_is_appended_until_the_container_stops(tmp_path: Path) -> None:
    p = _file(tmp_path, (0, "stdout", False, b"before"))
    running = [True]

    async def main() -> list[bytes]:
        got: list[bytes] = []
        first = asyncio.Event()

        async def writer() -> None:
            await first.wait()
            with p.open("ab") as f:
                f.write(cl.encode("stdout", b"after", False, T0 + 1))
            running[0] = False

        w = asyncio.create_task(writer())
        async for chunk in cl.follow(p, cl.Options(), lambda: running[0]):
            got.append(chunk)
            first.set()
        await w
        return got

    assert b"".join(asyncio.run(main())) == b"before\nafter\n"
