"""Readiness probes as the kubelet runs them: httpGet (any status 200–399 is success) and tcpSocket,
against the pod IP unless the probe names a host; each try bounded by timeoutSeconds."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from meshplane.lab.node import podspec

USER_AGENT = "kube-probe/1.32"


def _ssl_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the kubelet does not verify probe certificates either
    return ctx


async def check(p: podspec.Probe, pod_ip: str) -> tuple[bool, str]:
    """(success, message): one try of the probe."""
    if p.kind == "unsupported":
        return False, p.message
    host = p.host or pod_ip
    try:
        async with asyncio.timeout(p.timeout):
            if p.kind == "tcp":
                _, writer = await asyncio.open_connection(host, p.port)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return True, ""
            return await _http(p, host)
    except TimeoutError:
        return False, f"probe to {host}:{p.port} timed out after {p.timeout:g}s"
    except OSError as e:
        return False, f"probe to {host}:{p.port} failed: {e.strerror or e}"


async def _http(p: podspec.Probe, host: str) -> tuple[bool, str]:
    tls = _ssl_context() if p.scheme == "HTTPS" else None
    reader, writer = await asyncio.open_connection(host, p.port, ssl=tls)
    try:
        headers = {
            "Host": f"{host}:{p.port}",
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            "Connection": "close",
        }
        headers.update(dict(p.headers))
        path = p.path if p.path.startswith("/") else f"/{p.path}"
        head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode("latin-1", errors="replace"))
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    parts = line.decode("latin-1", errors="replace").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"probe to {host}:{p.port}{p.path}: malformed HTTP response"
    code = int(parts[1])
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"
