"""The agent as the lab runs it (a process per pod) against an istiod-like 15012 (ADS + CA over TLS,
XDS_AUTH, real generators): readiness, certificates in Envoy, rotation under load through an
mTLS pair of sidecars, Envoy restarts, the discovery going down and coming back (SotW and Delta).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from meshplane.agent import errors
from meshplane.model import endpoint, mesh
from meshplane.model.ids import ClusterId
from tests.support import agentproc, istiod, labpod, memsource, netaddr
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy

SERVER_SA, CLIENT_SA = "helloworld", "sleep"
HELLO_HOST = "helloworld.sample:5000"


@dataclass
class Pod:
    name: str
    ip: str
    localhost: str
    agent: agentproc.AgentProcess

    async def serials(self) -> list[int]:
        try:
            certs = (await self.agent.admin.certs()).get("certificates", [])
        except errors.AgentError:
            return []
        return [int(c["serial_number"], 16) for e in certs for c in e.get("cert_chain", [])]

    async def stat(self, name: str) -> int:
        try:
            return (await self.agent.admin.stats(name)).get(name, 0)
        except errors.AgentError:
            return 0


@pytest.fixture
async def plane() -> AsyncIterator[istiod.Istiod]:
    src = memsource.MemorySource(mesh.MeshConfig(mtls_mode=mesh.MtlsMode.STRICT))
    cp = istiod.Istiod(src)
    await cp.start()
    try:
        yield cp
    finally:
        await cp.stop()


@pytest.fixture
async def pods(tmp_path: Path) -> AsyncIterator[list[Pod]]:
    started: list[Pod] = []
    yield started
    for pod in started:
        code = await pod.agent.stop()
        assert code == 0, (pod.agent.root / "agent.log").read_text()[-3000:]


async def start_pod(
    tmp_path: Path, plane: istiod.Istiod, pods: list[Pod], name: str, sa: str, ip: str, **extra: str
) -> Pod:
    root = labpod.write(
        tmp_path / name,
        token=plane.reviewer.issue("sample", sa),
        root_pem=plane.mesh.root_pem,
        hosts={"istiod.istio-system.svc": plane.host},
    )
    localhost = netaddr.loopback_host()
    env = agentproc.pod_env(
        root,
        pod=name,
        namespace="sample",
        sa=sa,
        ip=ip,
        discovery=plane.address,
        localhost=localhost,
        extra=extra,
    )
    pod = Pod(name, ip, localhost, await agentproc.start(env, root, ip, 15021))
    pods.append(pod)
    return pod


def hello_service(plane: istiod.Istiod, server_ip: str) -> None:
    svc = plane.source.add_service("helloworld", "sample", (("http", 5000),))
    plane.source.endpoints[svc.hostname] = {
        ClusterId("cluster1"): (
            endpoint.Endpoint(
                address=server_ip,
                ports={"http": 5000},
                cluster_id=ClusterId("cluster1"),
                network="network1",
                namespace="sample",
                service_account=SERVER_SA,
                workload_name="helloworld-v1-1",
                tls_mode="istio",
            ),
        )
    }


@pytest.fixture
async def hello_app() -> AsyncIterator[list[str]]:
    """The app of the server pod (bound later on its localhost); records the XFCC it receives."""
    seen: list[str] = []
    yield seen


async def serve_hello(localhost: str, seen: list[str]) -> web.AppRunner:
    async def hello(request: web.Request) -> web.Response:
        seen.append(request.headers.get("x-forwarded-client-cert", ""))
        return web.Response(text="Hello version: v1, instance: helloworld-v1-1\n")

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, localhost, 5000).start()
    return runner


async def ready(pod: Pod) -> bool:
    status, _ = await pod.agent.ready()
    return status == 200


async def test_readiness_waits_for_config_then_cert_is_in_envoy(tmp_path: Path, pods: list[Pod]) -> None:
    src = memsource.MemorySource()
    plane = istiod.Istiod(src)
    await plane.start()  # no push yet: the ADS server has nothing to send
    try:
        ip = netaddr.loopback_host()
        hello_service(plane, ip)
        pod = await start_pod(tmp_path, plane, pods, "helloworld-v1-1", SERVER_SA, ip)
        await wait_for(lambda: plane.issued() >= 1, 20, message="cert issued")
        status, body = await wait_for(_answer(pod), 20, message="readiness answers")
        assert status == 503, body
        # the agent's stream is open and authenticated, yet no config: still not ready
        await wait_for(
            lambda: plane.ads is not None and len(plane.ads.connections) == 1, 20, message="ADS conn"
        )
        status, body = await pod.agent.ready()
        assert status == 503 and ("config not received" in body or "INITIALIZING" in body), body
        await plane.push("startup")
        await wait_for(lambda: ready(pod), 20, message="ready after config")
        # the inbound listener uses SDS `default`/`ROOTCA`: Envoy shows the workload cert
        serials = await wait_for(pod.serials, 20, message="cert in /certs")
        certs = (await pod.agent.admin.certs())["certificates"][0]
        assert certs["cert_chain"][0]["subject_alt_names"] == [
            {"uri": f"spiffe://cluster.local/ns/sample/sa/{SERVER_SA}"}
        ]
        assert int(certs["ca_cert"][0]["serial_number"], 16) == plane.mesh.bundle.root.serial_number
        assert len(set(serials)) == 1  # every TLS context (inbound, outbound) has the same cert
        node = plane.ads.connections[0].proxy  # type: ignore[union-attr]
        assert node.metadata["MESHPLANE_LOCALHOST"] == pod.localhost
    finally:
        await plane.stop()


def _answer(pod: Pod):  # type: ignore[no-untyped-def]
    async def f() -> tuple[int, str] | None:
        status, body = await pod.agent.ready()
        return (status, body) if status else None

    return f


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_mtls_pair_rotation_restart_and_discovery_outage(
    tmp_path: Path, plane: istiod.Istiod, pods: list[Pod], hello_app: list[str], delta: bool
) -> None:
    server_ip, client_ip = netaddr.loopback_host(), netaddr.loopback_host()
    hello_service(plane, server_ip)
    await plane.push("startup")
    extra = {"SECRET_TTL": "4s", "ISTIO_DELTA_XDS": "true" if delta else "false"}
    server = await start_pod(
        tmp_path,
        plane,
        pods,
        "helloworld-v1-1",
        SERVER_SA,
        server_ip,
        ECC_SIGNATURE_ALGORITHM="ECDSA",
        **extra,
    )
    client = await start_pod(tmp_path, plane, pods, "sleep-1", CLIENT_SA, client_ip, **extra)
    app = await serve_hello(server.localhost, hello_app)
    ok = failed = 0
    try:
        for pod in (server, client):
            await wait_for(lambda pod=pod: ready(pod), 30, message=f"{pod.name} ready")
        async with aiohttp.ClientSession() as session:

            async def get() -> bool:
                try:
                    async with session.get(
                        f"http://{client.localhost}:15001/hello",
                        headers={"Host": HELLO_HOST},
                        timeout=aiohttp.ClientTimeout(total=3),
                    ) as resp:
                        return resp.status == 200 and (await resp.text()).startswith("Hello version: v1")
                except (aiohttp.ClientError, TimeoutError):
                    return False

            await wait_for(get, 30, message="first request through the pair")
            # STRICT: only mTLS reaches the app, and the app sees the caller's SPIFFE id
            assert f"URI=spiffe://cluster.local/ns/sample/sa/{CLIENT_SA}" in hello_app[-1]

            # 1) rotation every ~2s under a continuous request loop: nothing fails, Envoy keeps running
            pids = {
                p.name: await wait_for(lambda p=p: _child_envoy(p.agent.proc.pid), 10)
                for p in (server, client)
            }
            seen: dict[str, set[int]] = {p.name: set(await p.serials()) for p in (server, client)}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 40
            while min(len(s) for s in seen.values()) < 3:
                assert loop.time() < deadline, f"rotation too slow: {seen}"
                if await get():
                    ok += 1
                else:
                    failed += 1
                for p in (server, client):
                    seen[p.name].update(await p.serials())
            assert failed == 0, f"{failed} of {ok + failed} requests failed during rotation"
            assert ok >= 20
            for p in (server, client):
                assert _child_envoy(p.agent.proc.pid) == pids[p.name], "envoy was restarted by rotation"

            # 2) killing Envoy: the agent starts a new one, which gets config and certs again
            os.kill(pids[server.name], signal.SIGKILL)
            new_pid = await wait_for(
                lambda: (pid := _child_envoy(server.agent.proc.pid)) not in (None, pids[server.name]) and pid,
                20,
                message="envoy restarted",
            )
            await wait_for(lambda: ready(server), 30, message="restarted envoy ready")
            await wait_for(get, 30, message="traffic after the restart")
            assert "envoy exited, restarting" in (server.agent.root / "agent.log").read_text()
            assert new_pid != pids[server.name]

            # 3) discovery down: Envoy keeps its config and keeps carrying traffic
            cds_before = await client.stat("cluster_manager.cds.update_success")
            await plane.stop()
            for _ in range(20):
                assert await get(), "request failed while the discovery was down"
            # Envoy reconnects to its agent, which holds the stream open and retries upstream
            for p in (server, client):
                await wait_for(
                    lambda p=p: "xds upstream unavailable" in _log(p), 20, message="agent retrying"
                )
            assert await get() and await ready(client)
            # ... and comes back: the proxies reconnect and resync (a new service shows up)
            plane.source.add_service("extra", "sample", (("http", 9000),))
            await plane.start()
            await plane.push("back")
            await wait_for(
                lambda: plane.ads is not None and len(plane.ads.connections) == 2, 40, message="reconnect"
            )
            await wait_for(
                lambda: _has_cluster(client, "outbound|9000||extra.sample.svc.cluster.local"),
                30,
                message="resync",
            )
            assert await client.stat("cluster_manager.cds.update_success") > cds_before
            assert await get()
        for p in (server, client):
            log = (p.agent.root / "agent.log").read_text()
            assert f"kind={'delta' if delta else 'sotw'}" in log
    finally:
        await app.cleanup()


def _log(pod: Pod) -> str:
    return (pod.agent.root / "agent.log").read_text()


async def _has_cluster(pod: Pod, name: str) -> bool:
    try:
        status, body = await pod.agent.admin._request("GET", "/clusters")
    except errors.AgentError:
        return False
    return status == 200 and f"{name}::" in body


def _child_envoy(parent: int) -> int | None:
    """The PID of the agent's Envoy child (read from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat.split("(", 1)[1].rsplit(")", 1)[0]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and "envoy" in comm:
            return int(entry.name)
    return None
