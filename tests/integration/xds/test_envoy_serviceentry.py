"""A real Envoy sidecar (explicit outbound listener on its localhost:15001, bootstrapped by
`meshplane agent bootstrap`, fed by the ADS server) reaches a local "external" HTTP server by a
ServiceEntry's host name: unknown to the mesh the host is refused (no route, 404); a STATIC entry
sends it to the entry's endpoint (EDS), a DNS entry to whatever Envoy resolves `localhost` to
(STRICT_DNS); deleting the entries refuses it again."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshplane.networking import config as networking_config
from meshplane.push import context
from tests.support import envoyproc, httpbackend, memsource, netaddr, stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy


class EntrySource(memsource.MemorySource):
    """The memory source plus ServiceEntries, merged as discovery/app.py does."""

    networking = networking_config.NetworkingConfig()

    def snapshot(self, version: str) -> context.PushContext:
        base = super().snapshot(version)
        services, shards = self.networking.with_entries(base.services, base.endpoints)
        return dataclasses.replace(base, services=services, endpoints=shards, networking=self.networking)


def _entry(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": "sample"},
        "spec": spec,
    }


async def _get(lh: str, host: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s,
        s.get(f"http://{lh}:15001/x", headers={"Host": host}) as r,
    ):
        body = await r.text()
        return r.status, (json.loads(body)["name"] if r.status == 200 else body)


def _accepting(lh: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            await _get(lh, "probe.invalid:1")
        except aiohttp.ClientConnectionError:
            return False
        return True

    return check


async def test_sidecar_reaches_external_hosts_only_through_service_entries(tmp_path: Path) -> None:
    net = netaddr.Loopback()
    source = EntrySource()
    static_ip = net.ip()
    async with (
        httpbackend.serve("static-backend", static_ip) as static_port,
        httpbackend.serve("dns-backend", "127.0.0.1") as dns_port,
        stack.running(source) as st,
    ):
        lh = net.ip()
        bs = tmp_path / "sleep.json"
        await envoyproc.bootstrap_cli(
            bs, discovery=st.target, pod="sleep", namespace="sample", ip=net.ip(), localhost=lh
        )
        async with envoyproc.run(bs, tmp_path) as envoy:

            async def listening() -> bool:
                return f"{lh}_15001" in await envoy.listeners() and not await envoy.stat(
                    "listener_manager.total_listeners_warming"
                )

            await wait_for(listening, 20, what="outbound listener")
            await wait_for(_accepting(lh), 20, what="outbound listener accepting")
            # not in the registry: the sidecar has no route for it
            assert (await _get(lh, "static.example.test:8000"))[0] == 404
            assert (await _get(lh, "dns.example.test:8000"))[0] == 404

            cfg, problems = networking_config.build(
                [
                    _entry(
                        "static",
                        {
                            "hosts": ["static.example.test"],
                            "ports": [{"number": 8000, "name": "http", "protocol": "HTTP"}],
                            "resolution": "STATIC",
                            "endpoints": [{"address": static_ip, "ports": {"http": static_port}}],
                        },
                    ),
                    _entry(
                        "dns",
                        {
                            "hosts": ["dns.example.test"],
                            "ports": [
                                {"number": 8000, "name": "http", "protocol": "HTTP", "targetPort": dns_port}
                            ],
                            "resolution": "DNS",
                            "endpoints": [{"address": "localhost"}],
                        },
                    ),
                ]
            )
            assert problems == []
            source.networking = cfg
            await st.push(reason="service-entry")

            async def answered(host: str, name: str) -> bool:
                return await _get(lh, host) == (200, name)

            await wait_for(lambda: answered("static.example.test:8000", "static-backend"), 20, what="STATIC")
            await wait_for(lambda: answered("dns.example.test:8000", "dns-backend"), 20, what="DNS")
            assert await envoy.stat("cluster_manager.cds.update_rejected") == 0

            source.networking = networking_config.NetworkingConfig()
            await st.push(reason="service-entry-deleted")

            async def refused() -> bool:
                return (await _get(lh, "static.example.test:8000"))[0] == 404

            await wait_for(refused, 20, what="entries removed")
