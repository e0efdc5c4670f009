"""A small client of Envoy's admin API on the pod's admin unix socket (readiness, stats, drain)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from meshplane.agent import errors, uds

LDS_SUCCESS = "listener_manager.lds.update_success"
CDS_SUCCESS = "cluster_manager.cds.update_success"


def parse_stats(text: str) -> dict[str, int]:
    """`name: value` lines of `/stats` into integers (histograms and text values are skipped)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and value.strip().lstrip("-").isdigit():
            out[name.strip()] = int(value)
    return out


class AdminClient:
    def __init__(self, address: uds.UdsAddress, timeout: float = 2.0) -> None:
        self._address = address
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(self, method: str, path: str, params: dict[str, str] | None = None) -> tuple[int, str]:
        connector = aiohttp.UnixConnector(path=self._address.socket_path)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=self._timeout) as session,
                session.request(method, f"http://envoy-admin{path}", params=params) as resp,
            ):
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise errors.AgentError(f"envoy admin {method} {path}: {e!r}") from e

    async def server_state(self) -> str:
        """`LIVE`, `PRE_INITIALIZING`, `INITIALIZING` or `DRAINING` (admin `/ready`)."""
        _, body = await self._request("GET", "/ready")
        return body.strip()

    async def stats(self, *names: str) -> dict[str, int]:
        pattern = "^(" + "|".join(n.replace(".", r"\.") for n in names) + ")$"
        status, body = await self._request("GET", "/stats", {"filter": pattern})
        if status != 200:
            raise errors.AgentError(f"envoy admin /stats answered {status}")
        return parse_stats(body)

    async def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        status, body = await self._request("GET", path, params)
        if status != 200:
            raise errors.AgentError(f"envoy admin {path} answered {status}")
        try:
            return json.loads(body)
        except ValueError as e:
            raise errors.AgentError(f"envoy admin {path} is not JSON: {e}") from e

    async def prometheus(self, query: str = "") -> str:
        """Envoy's `/stats/prometheus` (Prometheus text), with the scraper's query string."""
        path = "/stats/prometheus" + (f"?{query}" if query else "")
        status, body = await self._request("GET", path)
        if status != 200:
            raise errors.AgentError(f"envoy admin {path} answered {status}")
        return body

    async def certs(self) -> dict[str, Any]:
        status, body = await self._request("GET", "/certs")
        if status != 200:
            raise errors.AgentError(f"envoy admin /certs answered {status}")
        data: dict[str, Any] = json.loads(body)
        return data

    async def drain_listeners(self, inbound_only: bool) -> None:
        path = "/drain_listeners?graceful" + ("&inboundonly" if inbound_only else "")
        status, body = await self._request("POST", path)
        if status != 200:
            raise errors.AgentError(f"envoy admin drain answered {status}: {body.strip()}")
