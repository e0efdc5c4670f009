"""A small synchronous HTTPS client for poking the dev cluster with exact bytes, headers and media
types (bad bodies, Status objects, watch streams) where kubectl and lightkube are too polite."""

from __future__ import annotations

import http.client
import json
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    warnings: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


class Api:
    def __init__(self, url: str, ca_pem: bytes, token: str | None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.token = token
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as f:
            f.write(ca_pem)
            ca_file = f.name
        self.ctx = ssl.create_default_context(cafile=ca_file)
        Path(ca_file).unlink()

    def _conn(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def _headers(self, content_type: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if content_type:
            h["Content-Type"] = content_type
        h.update(extra or {})
        return h

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Response:
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        conn = self._conn(timeout)
        try:
            hdrs = self._headers(content_type if data is not None else None, headers)
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            return Response(resp.status, resp.headers, payload, resp.headers.get_all("Warning") or [])
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def watch(self, path: str, timeout: float = 30.0) -> Watch:
        conn = self._conn(timeout)
        conn.request("GET", path, headers=self._headers(None, None))
        return Watch(conn, conn.getresponse())


class Watch:
    """Iterate decoded watch events; close() drops the connection (a client going away)."""

    def __init__(self, conn: http.client.HTTPSConnection, resp: http.client.HTTPResponse) -> None:
        self.conn = conn
        self.resp = resp
        self.status = resp.status

    def events(self) -> Iterator[dict[str, Any]]:
        while True:
            line = self.resp.readline()
            if not line:
                return
            if line.strip():
                yield json.loads(line)

    def next(self) -> dict[str, Any]:
        return next(self.events())

    def close(self) -> None:
        try:
            sock = self.conn.sock
            if sock is not None:
                sock.close()
        finally:
            self.conn.close()


def for_cluster(cluster: Any, token: str | None = "admin") -> Api:
    """An Api for a DevCluster (token "admin" means its admin token)."""
    tok = cluster.admin_token if token == "admin" else token
    return Api(cluster.url, cluster.ca_pem, tok)
