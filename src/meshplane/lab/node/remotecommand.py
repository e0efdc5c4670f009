"""Exec and attach sessions over the Kubernetes channel WebSocket protocols (kubelet side).

The protocols are kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/util/remotecommand
(constants.go) and client-go tools/remotecommand/websocket.go: every binary message starts with
its channel byte, 0 stdin, 1 stdout, 2 stderr, 3 error (the final `Status`), 4 resize (JSON
`{"Width": w, "Height": h}`); `v5.channel.k8s.io` adds 255, CLOSE `[255, channel]`, with which the
client half-closes stdin. The session ends with one message on the error channel: a `Status` of
Success, or Failure with reason NonZeroExitCode and the exit code as the ExitCode cause (what
kubectl exits with; kubelet pkg/kubelet/cri/streaming/remotecommand/websocket.go and
httpstream.go `v4WriteStatusFunc`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import struct
import termios
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def status(code: int | None, message: str = "") -> bytes:
    """The error channel's final Status (v4 and later)."""
    if code == 0 and not message:
        return json.dumps({"metadata": {}, "status": "Success"}).encode()
    if code is None:
        body: dict[str, Any] = {"metadata": {}, "status": "Failure", "message": message}
        return json.dumps(body).encode()
    body = {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {message or f'exit status {code}'}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }
    return json.dumps(body).encode()


def negotiated(request: web.Request) -> str | None:
    """The channel protocol the client offers that we speak (None: refuse before upgrading)."""
    offered = [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")]
    return next((p for p in offered if p in PROTOCOLS), None)


async def accept(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True, max_msg_size=16 * 1024 * 1024)
    await ws.prepare(request)
    return ws


def _set_ctty() -> None:  # runs in the child, after setsid and the dup2 of the pty to 0/1/2
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _resize(fd: int, payload: bytes) -> None:
    try:
        size = json.loads(payload)
        w, h = int(size.get("Width", 0)), int(size.get("Height", 0))
    except (ValueError, TypeError, AttributeError):
        return
    if w > 0 and h > 0:
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))


async def _reader_of(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return reader


async def _copy_out(reader: asyncio.StreamReader, ws: web.WebSocketResponse, channel: int) -> None:
    while True:
        try:
            data = await reader.read(32 * 1024)
        except OSError:  # EIO: the pty's other side is closed
            return
        if not data:
            return
        if not ws.closed:
            await ws.send_bytes(bytes([channel]) + data)


async def exec_session(
    request: web.Request,
    argv: Sequence[str],
    env: dict[str, str],
    *,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
) -> web.WebSocketResponse:
    """Run `argv` and stream it over the WebSocket until it exits; then its Status, then close."""
    ws = await accept(request)
    master = -1
    outs: list[tuple[asyncio.StreamReader, int]] = []
    try:
        if tty:
            master, slave = os.openpty()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    env=env,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    start_new_session=True,
                    preexec_fn=_set_ctty,
                )
            finally:
                os.close(slave)
            write_fd = os.dup(master)
            outs.append((await _reader_of(master), STDOUT))
            master = write_fd
        else:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE if stderr else asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
            if proc.stdout is not None:
                outs.append((proc.stdout, STDOUT))
            if proc.stderr is not None:
                outs.append((proc.stderr, STDERR))
    except OSError as e:  # the command (or the namespace helper) could not start
        await ws.send_bytes(bytes([ERROR]) + status(None, f"failed to start {argv[-1]!r}: {e}"))
        await ws.close()
        if master >= 0:
            os.close(master)
        return ws

    copies = [asyncio.create_task(_copy_out(r, ws, ch)) for r, ch in outs]
    inputs = asyncio.create_task(_read_input(ws, proc, master if tty else -1, stdin))
    try:
        code = await proc.wait()
        await asyncio.gather(*copies)
        if not ws.closed:
            await ws.send_bytes(bytes([ERROR]) + status(code))
            await ws.close()
    finally:
        inputs.cancel()
        for t in copies:
            t.cancel()
        if proc.returncode is None:  # the client went away: end what it started (its own
            with contextlib.suppress(ProcessLookupError):  # process group, by the leader's PID)
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        if master >= 0:
            os.close(master)
    return ws


async def _read_input(
    ws: web.WebSocketResponse, proc: asyncio.subprocess.Process, tty_fd: int, stdin: bool
) -> None:
    async for msg in ws:
        if msg.type != WSMsgType.BINARY or not msg.data:
            continue
        data: bytes = msg.data
        ch, payload = data[0], data[1:]
        if ch == STDIN and stdin:
            if tty_fd >= 0:
                with contextlib.suppress(OSError):
                    os.write(tty_fd, payload)
            elif proc.stdin is not None and not proc.stdin.is_closing():
                with contextlib.suppress(ConnectionError):
                    proc.stdin.write(payload)
                    await proc.stdin.drain()
        elif ch == RESIZE and tty_fd >= 0:
            _resize(tty_fd, payload)
        elif ch == CLOSE and payload[:1] == bytes([STDIN]):
            if tty_fd >= 0:
                with contextlib.suppress(OSError):
                    os.write(tty_fd, b"\x04")  # end of input on a terminal
            elif proc.stdin is not None:
                proc.stdin.close()
    # the client closed the connection: its command is ended by exec_session


async def attach_session(
    request: web.Request,
    entries: AsyncIterator[list[Any]],
) -> web.WebSocketResponse:
    """Stream a running container's output from now on (stdout and stderr on their channels)
    until it exits; the entries come from its log (`containerlog.follow_entries`)."""
    ws = await accept(request)

    async def drain_input() -> None:
        async for _ in ws:  # pings are answered by aiohttp; input is refused before upgrading
            pass

    reader = asyncio.create_task(drain_input())
    try:
        async for batch in entries:
            for e in batch:
                if ws.closed:
                    return ws
                ch = STDOUT if e.stream == "stdout" else STDERR
                await ws.send_bytes(bytes([ch]) + e.content + (b"" if e.partial else b"\n"))
        if not ws.closed:
            await ws.send_bytes(bytes([ERROR]) + status(0))
            await ws.close()
    finally:
        reader.cancel()
    return ws
