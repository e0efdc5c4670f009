"""A real Envoy in router mode with the guide's expose-istiod.yaml (and expose-services.yaml):
TLS reaching the gateway on 15012/15017 is passed through untouched to istiod by SNI, and
AUTO_PASSTHROUGH on 15443 routes Istio SNI names to the service's endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from meshplane.networking import config as networking_config
from meshplane.push import context
from tests.support import envoyproc, memsource, netaddr, secpki, stack
from tests.support import meshdata as md
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy
DATA = Path(__file__).resolve().parents[2] / "unit" / "xds" / "data"
ISTIOD_NAME = "istiod.istio-system.svc"


class NetworkedSource(memsource.MemorySource):
    """The memory source plus Gateway/VirtualService config, as the registry will provide it."""

    networking = networking_config.NetworkingConfig()

    def snapshot(self, version: str) -> context.PushContext:
        return dataclasses.replace(super().snapshot(version), networking=self.networking)


def _server_context(tmp: Path, pair: secpki.Pair, name: str) -> ssl.SSLContext:
    (tmp / f"{name}.crt").write_bytes(pair.cert_pem)
    (tmp / f"{name}.key").write_bytes(pair.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / f"{name}.crt", tmp / f"{name}.key")
    return ctx


@contextlib.asynccontextmanager
async def _tls_echo(host: str, ctx: ssl.SSLContext, tag: str) -> AsyncIterator[int]:
    """A TLS server answering each line with `tag:line`; yields its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            line = await reader.readline()
            writer.write(f"{tag}:{line.decode().strip()}\n".encode())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, host, 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _ask(host: str, port: int, sni: str, ca: secpki.CA, verify_name: str) -> str:
    ctx = ssl.create_default_context(cadata=ca.pem.decode())
    ctx.check_hostname = False  # the SNI may differ from the name checked below
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, server_hostname=sni), timeout=5
    )
    try:
        cert = writer.get_extra_info("peercert")
        names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        assert verify_name in names, names  # the backend's own certificate: passed through, not terminated
        writer.write(b"hello\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_east_west_gateway_passes_tls_through(delta: bool, tmp_path: Path) -> None:
    net = netaddr.Loopback()
    ca = secpki.CA()
    istiod_ip, hello_ip, gw_ip = net.ip(), net.ip(), net.ip()
    docs = [
        d
        for f in ("expose-istiod.yaml", "expose-services.yaml")
        for d in yaml.safe_load_all((DATA / f).read_text())
    ]
    cfg, problems = networking_config.build(docs)
    assert problems == []
    source = NetworkedSource()
    source.networking = cfg
    istiod = source.add_service("istiod", "istio-system", (("tcp-istiod", 15012), ("tcp-webhook", 443)))
    hello = source.add_service("helloworld", "sample", (("http", 5000),))
    istiod_ctx = _server_context(tmp_path, ca.issue(dns=(ISTIOD_NAME,)), "istiod")
    hello_ctx = _server_context(tmp_path, ca.issue(dns=("helloworld.sample.svc",)), "hello")
    async with (
        _tls_echo(istiod_ip, istiod_ctx, "xds") as xds_port,
        _tls_echo(istiod_ip, istiod_ctx, "webhook") as webhook_port,
        _tls_echo(hello_ip, hello_ctx, "hello") as hello_port,
    ):
        source.endpoints[istiod.hostname] = md.shards(
            md.ep(
                istiod_ip,
                "cluster1",
                {"tcp-istiod": xds_port, "tcp-webhook": webhook_port},
                namespace="istio-system",
            )
        )
        source.endpoints[hello.hostname] = md.shards(
            md.ep(hello_ip, "cluster1", {"http": hello_port}, tls=True)
        )
        st = await stack.start(source)
        try:
            bs = tmp_path / "eastwest.json"
            await envoyproc.bootstrap_cli(
                bs,
                discovery=st.target,
                proxy_type="router",
                pod="istio-eastwestgateway-1",
                namespace="istio-system",
                ip=gw_ip,
                localhost=net.ip(),
                delta=delta,
                labels={"istio": "eastwestgateway", "app": "istio-eastwestgateway"},
                env={"ISTIO_META_REQUESTED_NETWORK_VIEW": "network1", "ISTIO_META_CLUSTER_ID": "cluster1"},
            )
            async with envoyproc.run(bs, tmp_path) as envoy:

                async def ready() -> bool:
                    names = set(await envoy.listeners())
                    return {
                        f"{gw_ip}_15012",
                        f"{gw_ip}_15017",
                        f"{gw_ip}_15443",
                    } <= names and not await envoy.stat("listener_manager.total_listeners_warming")

                await wait_for(ready, 20, what="gateway listeners")
                # a client in cluster2 reaching istiod through the gateway sees istiod's own cert
                assert await _ask(gw_ip, 15012, ISTIOD_NAME, ca, ISTIOD_NAME) == "xds:hello"
                assert await _ask(gw_ip, 15017, ISTIOD_NAME, ca, ISTIOD_NAME) == "webhook:hello"
                # sniHosts "*": any SNI goes to istiod
                assert await _ask(gw_ip, 15012, "anything.example", ca, ISTIOD_NAME) == "xds:hello"
                # AUTO_PASSTHROUGH: Istio's SNI picks the service and port
                sni = "outbound_.5000_._.helloworld.sample.svc.cluster.local"
                assert await _ask(gw_ip, 15443, sni, ca, "helloworld.sample.svc") == "hello:hello"
                assert await envoy.stat("listener_manager.lds.update_rejected") == 0
                assert await envoy.stat("cluster_manager.cds.update_rejected") == 0
        finally:
            await st.stop()
