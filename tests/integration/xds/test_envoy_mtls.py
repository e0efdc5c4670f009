"""Generated auto-mTLS between two real Envoy sidecars: the client's outbound cluster presents its
workload cert and verifies the server's SPIFFE id; the server's inbound listener accepts Istio mTLS
(and plaintext only in PERMISSIVE) and passes the caller's identity to the app in XFCC."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import aiohttp
import pytest

from meshplane.model import mesh
from meshplane.model.ids import ClusterId
from tests.support import envoyproc, httpbackend, memsource, netaddr, sdsserver, secpki, stack
from tests.support import meshdata as md
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy
CLUSTER = "outbound|5000||helloworld.sample.svc.cluster.local"
SERVER_ID = "spiffe://cluster.local/ns/sample/sa/helloworld"
CLIENT_ID = "spiffe://cluster.local/ns/sample/sa/sleep"


async def _get(url: str, **kw: object) -> tuple[int, dict[str, str] | str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s,
        s.get(url, **kw) as r,  # type: ignore[arg-type]
    ):
        text = await r.text()
        return r.status, json.loads(text) if r.status == 200 else text


async def _plaintext_refused(url: str) -> bool:
    try:
        await _get(url)
    except (aiohttp.ClientError, TimeoutError):
        return True
    return False


async def test_mtls_between_sidecars_permissive_then_strict(tmp_path: Path) -> None:
    net = netaddr.Loopback()
    ca = secpki.CA()
    server_ip, server_lh, client_ip, client_lh = net.ip(), net.ip(), net.ip(), net.ip()
    source = memsource.MemorySource()
    hello = source.add_service("helloworld", "sample", (("http", 5000),))
    async with contextlib.AsyncExitStack() as es:
        app_port = await es.enter_async_context(httpbackend.serve("v1", server_lh))
        source.endpoints[hello.hostname] = {
            ClusterId("cluster1"): (
                md.ep(server_ip, "cluster1", {"http": app_port}, tls=True, sa="helloworld"),
            )
        }
        st = await stack.start(source)
        es.push_async_callback(st.stop)
        envoys = {}
        for role, ip, lh, identity in (
            ("server", server_ip, server_lh, SERVER_ID),
            ("client", client_ip, client_lh, CLIENT_ID),
        ):
            sock = str(tmp_path / f"sds-{role}.sock")
            await es.enter_async_context(sdsserver.serve(sock, ca, ca.issue(uris=(identity,))))
            bs = tmp_path / f"{role}.json"
            await envoyproc.bootstrap_cli(
                bs,
                discovery=st.target,
                pod=f"{role}-1",
                namespace="sample",
                ip=ip,
                localhost=lh,
                sds_socket=sock,
                labels={"app": role},
            )
            envoys[role] = await es.enter_async_context(envoyproc.run(bs, tmp_path))
        server, client = envoys["server"], envoys["client"]
        inbound = f"{server_ip}_{app_port}"

        async def ready() -> bool:
            return (
                inbound in await server.listeners()
                and f"{client_lh}_15001" in await client.listeners()
                and await client.hosts(CLUSTER) == {f"{server_ip}:{app_port}": "HEALTHY"}
                and await client.stat("listener_manager.total_listeners_warming") == 0
                and await server.stat("listener_manager.total_listeners_warming") == 0
            )

        await wait_for(ready, 20, what="both sidecars configured, secrets loaded")
        via_mesh = f"http://{client_lh}:15001/hello"
        host = {"Host": "helloworld.sample:5000"}

        status, body = await _get(via_mesh, headers=host)
        assert status == 200, body
        assert isinstance(body, dict) and body["name"] == "v1"
        assert f"URI={CLIENT_ID}" in body["xfcc"] and f"By={SERVER_ID}" in body["xfcc"]
        assert await client.stat(f"cluster.{CLUSTER}.ssl.handshake") >= 1
        assert await server.stat(f"listener.{inbound}.ssl.handshake") >= 1

        # PERMISSIVE: a plaintext client straight to the pod is accepted too (and has no XFCC)
        status, body = await _get(f"http://{server_ip}:{app_port}/")
        assert status == 200 and isinstance(body, dict) and body["xfcc"] == ""

        # STRICT: plaintext refused, mTLS still fine
        source.mesh = dataclasses.replace(source.mesh, mtls_mode=mesh.MtlsMode.STRICT)
        await st.push(full=True, reason="mesh")
        await wait_for(
            lambda: _plaintext_refused(f"http://{server_ip}:{app_port}/"), 15, what="STRICT applied"
        )
        status, body = await _get(via_mesh, headers=host)
        assert status == 200 and isinstance(body, dict) and f"URI={CLIENT_ID}" in body["xfcc"]

        # the client verifies the server's identity: expecting another service account fails
        ep = source.endpoints[hello.hostname][ClusterId("cluster1")][0]
        source.endpoints[hello.hostname] = {
            ClusterId("cluster1"): (dataclasses.replace(ep, service_account="other"),)
        }
        await st.push(full=True, reason="identity")

        async def rejected() -> bool:
            status, _ = await _get(via_mesh, headers=host)
            return status == 503

        await wait_for(rejected, 15, what="SAN mismatch rejected")
        assert await client.stat(f"cluster.{CLUSTER}.ssl.fail_verify_san") >= 1
