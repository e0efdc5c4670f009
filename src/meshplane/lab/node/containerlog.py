"""Container logs as a container runtime keeps them, and read back as the kubelet serves them.

Each line a container writes is stored in the CRI logging format (what containerd and CRI-O
write, and the kubelet parses: kubernetes/kubernetes pkg/kubelet/kuberuntime/logs/logs.go,
cri-api's "CRI logging format"):

    2026-12-06T02:42:43.123456789Z stdout F the line's content

`F` ends a full line, `P` is a partial line continued by the next entry (a line longer than
`MAX_LINE`, or output still without a newline when the stream ends). One file per container
instance: `CONTAINER.log` is the running (or last) one, and when a container starts again its
old file becomes `CONTAINER.previous.log` (what `kubectl logs --previous` reads; the kubelet also
keeps only the last dead instance).

`read` applies the kubelet's `containerLogs` options (sinceSeconds/sinceTime, tailLines,
timestamps, limitBytes); `follow` keeps reading a file as it grows until the container stops,
woken by the pump's writes (same process) and looking again every FOLLOW_POLL seconds anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

MAX_LINE = 16 * 1024  # containerd's default max container log line size
FOLLOW_POLL = 0.25  # seconds between looks at a followed file the pump did not report growing


def previous_of(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".log") + ".previous.log")


def rotate(path: Path) -> None:
    """A new container instance starts: its predecessor's log becomes the previous one. Blocking."""
    if path.exists():
        os.replace(path, previous_of(path))


def timestamp(ns: int) -> str:
    """RFC3339 with nine fixed fractional digits (Go's RFC3339NanoFixed, as the CRI writes it)."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch of an RFC3339 time (with or without a fraction); ValueError."""
    if not text.endswith("Z"):
        raise ValueError(f"not a UTC RFC3339 time: {text!r}")
    body, _, frac = text[:-1].partition(".")
    if frac and not frac.isdigit():
        raise ValueError(f"not an RFC3339 time: {text!r}")
    base = dt.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
    return int(base.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def encode(stream: str, data: bytes, partial: bool, now_ns: int) -> bytes:
    return b"%s %s %s %s\n" % (timestamp(now_ns).encode(), stream.encode(), b"P" if partial else b"F", data)


class LineSplitter:
    """Bytes of one stream in, CRI entries out (full lines; partial ones past MAX_LINE or at EOF)."""

    def __init__(self, stream: str, clock: Callable[[], int] = time.time_ns) -> None:
        self.stream = stream
        self._buf = b""
        self._clock = clock

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out: list[bytes] = []
        now = self._clock()
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0 or nl > MAX_LINE:
                break
            out.append(encode(self.stream, self._buf[:nl], False, now))
            self._buf = self._buf[nl + 1 :]
        while len(self._buf) > MAX_LINE and self._buf.find(b"\n", 0, MAX_LINE) < 0:
            out.append(encode(self.stream, self._buf[:MAX_LINE], True, now))
            self._buf = self._buf[MAX_LINE:]
        return b"".join(out)

    def flush(self) -> bytes:
        data, self._buf = self._buf, b""
        return encode(self.stream, data, True, self._clock()) if data else b""


_followers: dict[Path, set[asyncio.Event]] = {}  # in this process: who follows which file


def _written(path: Path) -> None:
    for ev in _followers.get(path, ()):
        ev.set()


async def pump(reader: asyncio.StreamReader, stream: str, fd: int, path: Path | None = None) -> None:
    """Copy one output stream of a container into its log file (open O_APPEND at `path`) until
    EOF; followers of `path` in this process are woken at each write."""
    split = LineSplitter(stream)
    while True:
        data = await reader.read(65536)
        chunk = split.feed(data) if data else split.flush()
        if chunk:
            await asyncio.to_thread(os.write, fd, chunk)
            if path is not None:
                _written(path)
        if not data:
            return


@dataclass(frozen=True, slots=True)
class Entry:
    ts_ns: int
    stream: str
    partial: bool
    content: bytes


def parse(line: bytes) -> Entry | None:
    """One CRI log line (without its newline); None for a line that is not one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    try:
        ts = parse_timestamp(parts[0].decode())
    except ValueError:
        return None
    return Entry(ts, parts[1].decode(), parts[2] == b"P", parts[3] if len(parts) > 3 else b"")


@dataclass(frozen=True, slots=True)
class Options:
    """The kubelet's containerLogs options (PodLogOptions, already validated)."""

    since_ns: int | None = None  # sinceSeconds / sinceTime, as an absolute time
    tail_lines: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


def render(e: Entry, timestamps: bool) -> bytes:
    head = (timestamp(e.ts_ns) + " ").encode() if timestamps else b""
    return head + e.content + (b"" if e.partial else b"\n")


def select(raw: bytes, opts: Options) -> list[Entry]:
    """The entries of a whole file that `opts` selects (since, then the last tailLines lines)."""
    entries = [e for ln in raw.split(b"\n") if ln and (e := parse(ln)) is not None]
    if opts.since_ns is not None:
        entries = [e for e in entries if e.ts_ns >= opts.since_ns]
    if opts.tail_lines is not None:
        # a line is its partial entries and the full entry that ends it
        ends = [i for i, e in enumerate(entries) if not e.partial]
        if opts.tail_lines == 0:
            entries = []
        elif len(ends) > opts.tail_lines:
            entries = entries[ends[-opts.tail_lines - 1] + 1 :]
    return entries


class Limit:
    """limitBytes: how much more may be sent."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def take(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[: self.left]
        self.left -= len(data)
        return data

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0


def read(path: Path, opts: Options) -> bytes:
    """The whole answer of a non-following containerLogs request. Blocking: use a thread."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return b""
    return Limit(opts.limit_bytes).take(b"".join(render(e, opts.timestamps) for e in select(raw, opts)))


async def follow_entries(
    path: Path, opts: Options, running: Callable[[], bool]
) -> AsyncIterator[list[Entry]]:
    """What is logged now (per `opts`: since, tailLines), then each new entry as it is written,
    until the container instance whose file this is has stopped and everything it wrote was read."""

    def open_at_start() -> tuple[int | None, bytes]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None, b""
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return fd, b"".join(chunks)

    woken = asyncio.Event()  # set by the pump writing this file (else the poll notices)
    _followers.setdefault(path, set()).add(woken)
    fd, raw = await asyncio.to_thread(open_at_start)
    if fd is None:
        _unfollow(path, woken)
        return
    try:
        # only whole lines now; the unfinished last one is read again with the rest of it
        cut = raw.rfind(b"\n") + 1
        rest = raw[cut:]
        first = select(raw[:cut], opts)
        if first:
            yield first
        while True:
            chunk = await asyncio.to_thread(os.read, fd, 1 << 20)
            if not chunk:
                if running():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), FOLLOW_POLL)
                    woken.clear()
                    continue
                chunk = await asyncio.to_thread(os.read, fd, 1 << 20)  # written before it stopped
                if not chunk:
                    return
            rest += chunk
            cut = rest.rfind(b"\n") + 1
            lines, rest = rest[:cut], rest[cut:]
            entries = [e for ln in lines.split(b"\n") if ln and (e := parse(ln)) is not None]
            if opts.since_ns is not None:
                entries = [e for e in entries if e.ts_ns >= opts.since_ns]
            if entries:
                yield entries
    finally:
        _unfollow(path, woken)
        with contextlib.suppress(OSError):
            os.close(fd)


def _unfollow(path: Path, woken: asyncio.Event) -> None:
    waiting = _followers.get(path)
    if waiting is not None:
        waiting.discard(woken)
        if not waiting:
            del _followers[path]


async def follow(path: Path, opts: Options, running: Callable[[], bool]) -> AsyncIterator[bytes]:
    """`follow_entries` rendered as the kubelet answers a following containerLogs request."""
    limit = Limit(opts.limit_bytes)
    async for entries in follow_entries(path, opts, running):
        out = limit.take(b"".join(render(e, opts.timestamps) for e in entries))
        if out:
            yield out
        if limit.done:
            return
