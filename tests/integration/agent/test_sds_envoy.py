"""The agent's certificate path with a real CA service and real Envoys (static listeners, no ADS).

CA (D's certificate service over TLS, real authenticator chain) -> agent cert manager -> SDS on a
unix socket -> Envoy. Covers: the cert reaching Envoy's /certs, rotation with a short TTL under a
continuous request loop through an mTLS pair with zero failures and no Envoy restart, the token
file re-read on each request, the CA being down at start, and Envoy being restarted when killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from meshplane.agent import admin, certclient, csr, envoy, errors, rotation, sds, uds, upstream, workloadcert
from meshplane.runtime import backoff, clock, tasks
from tests.support import casrv, labpod, netaddr, staticenvoy
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy

CLIENT_ID = "spiffe://cluster.local/ns/sample/sa/sleep"
SERVER_ID = "spiffe://cluster.local/ns/sample/sa/helloworld"


@dataclass
class MiniAgent:
    """The agent's certificate half plus an Envoy, wired as app.py wires them."""

    name: str
    root: Path
    store: workloadcert.Store
    manager: rotation.CertManager
    sds: sds.SdsServer
    supervisor: envoy.Supervisor
    admin: admin.AdminClient
    group: tasks.TaskGroup

    async def leaf_serial(self) -> int | None:
        try:
            certs = (await self.admin.certs()).get("certificates", [])
        except errors.AgentError:
            return None  # admin not up (yet)
        for entry in certs:
            for c in entry.get("cert_chain", []):
                return int(c["serial_number"], 16)
        return None


async def start_agent(
    name: str,
    root: Path,
    ca_port: int,
    identity: str,
    ttl: float,
    listeners: list[dict[str, object]],
    clusters: list[dict[str, object]] = (),  # type: ignore[assignment]
) -> MiniAgent:
    target = upstream.Upstream(
        address=f"istiod.istio-system.svc:{ca_port}",
        cluster_id="cluster1",
        token_path=root / "var/run/secrets/tokens/istio-token",
        root_cert_path=root / "var/run/secrets/istio/root-cert.pem",
        hosts_path=root / "etc/hosts",
    )
    store = workloadcert.Store()
    manager = rotation.CertManager(
        identity=identity,
        algorithm=csr.KeyAlgorithm.ECDSA,
        ttl_seconds=ttl,
        source=certclient.CertClient(target),
        store=store,
        clock=clock.SystemClock(),
        retry=lambda: backoff.Backoff(initial=0.1, maximum=0.5),
        log_id=name,
    )
    sds_addr = uds.address(root / "var/run/secrets/workload-spiffe-uds/socket")
    admin_addr = uds.address(root / "etc/istio/proxy/admin.sock")
    server = sds.SdsServer(store, sds_addr, log_id=name)
    await server.start()
    boot = root / "etc/istio/proxy/envoy-rev.json"
    boot.parent.mkdir(parents=True, exist_ok=True)
    boot.write_text(
        json.dumps(
            staticenvoy.bootstrap(
                f"sidecar~127.0.0.1~{name}.sample~sample.svc.cluster.local",
                admin_addr.envoy_pipe,
                sds_addr.envoy_pipe,
                listeners,
                clusters,
            )
        )
    )
    supervisor = envoy.Supervisor(
        envoy.EnvoyOptions(config_path=boot, binary=envoy.binary(), concurrency=1),
        clock=clock.SystemClock(),
        retry=lambda: backoff.Backoff(initial=0.2, maximum=1.0),
        log_id=name,
    )
    group = tasks.TaskGroup(name)
    group.on_stop(server.stop)
    group.start(manager.run(), "certs")
    group.start(supervisor.run(), "envoy")
    group.on_stop(supervisor.stop)
    return MiniAgent(name, root, store, manager, server, supervisor, admin.AdminClient(admin_addr), group)


def make_pod(tmp_path: Path, name: str, ca_server: casrv.CaServer, sa: str) -> Path:
    token = ca_server.reviewer.issue("sample", sa)
    return labpod.write(
        tmp_path / name,
        token=token,
        root_pem=ca_server.mesh.root_pem,
        hosts={"istiod.istio-system.svc": "127.0.0.1"},
    )


async def test_cert_reaches_envoy_and_token_is_reread(tmp_path: Path, ca_server: casrv.CaServer) -> None:
    host = netaddr.loopback_host()
    port = netaddr.free_port(host)
    root = make_pod(tmp_path, "server", ca_server, "helloworld")
    agent = await start_agent(
        "server", root, ca_server.port, SERVER_ID, 3600, [staticenvoy.mtls_server(host, port, CLIENT_ID)]
    )
    try:
        cert = await wait_for(lambda: agent.store.current, 15, message="first cert")
        serial = await wait_for(agent.leaf_serial, 15, message="cert in envoy /certs")
        assert serial == cert.serial
        certs = (await agent.admin.certs())["certificates"][0]
        assert certs["cert_chain"][0]["subject_alt_names"] == [{"uri": SERVER_ID}]
        root_serial = int(certs["ca_cert"][0]["serial_number"], 16)
        assert root_serial == ca_server.mesh.bundle.root.serial_number
        # the kubelet rotates the projected token; the next CA request must carry the new one
        new_token = ca_server.reviewer.issue("sample", "helloworld")
        labpod.rotate_token(root, new_token)
        await agent.manager.fetch()
        assert ca_server.reviewer.calls[-1][0] == new_token
        assert ca_server.reviewer.calls[-1][1] == ("istio-ca",)
    finally:
        await agent.group.stop()


async def test_ca_down_at_start_is_retried(tmp_path: Path) -> None:
    ca_server = casrv.new_ca_server()
    ca_server.port = netaddr.free_port("127.0.0.1")
    root = make_pod(tmp_path, "late", ca_server, "helloworld")
    host = netaddr.loopback_host()
    agent = await start_agent(
        "late",
        root,
        ca_server.port,
        SERVER_ID,
        3600,
        [staticenvoy.mtls_server(host, netaddr.free_port(host), CLIENT_ID)],
    )
    try:
        await wait_for(lambda: agent.manager.failures >= 2, 15, message="failed CA attempts")
        assert agent.store.current is None
        await ca_server.start()
        await wait_for(agent.leaf_serial, 20, message="cert after the CA came up")
    finally:
        await agent.group.stop()
        await ca_server.stop()


async def test_rotation_under_load_drops_nothing(tmp_path: Path, ca_server: casrv.CaServer) -> None:
    host = netaddr.loopback_host()
    server_port, client_port = netaddr.free_port(host), netaddr.free_port(host)
    ttl = 4.0
    server = await start_agent(
        "server",
        make_pod(tmp_path, "server", ca_server, "helloworld"),
        ca_server.port,
        SERVER_ID,
        ttl,
        [staticenvoy.mtls_server(host, server_port, CLIENT_ID)],
    )
    client = await start_agent(
        "client",
        make_pod(tmp_path, "client", ca_server, "sleep"),
        ca_server.port,
        CLIENT_ID,
        ttl,
        [staticenvoy.plain_client(host, client_port)],
        [staticenvoy.mtls_upstream(host, server_port, SERVER_ID)],
    )
    url = f"http://{host}:{client_port}/hello"
    ok = failed = 0
    try:
        async with aiohttp.ClientSession() as session:

            async def get() -> bool:
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        return resp.status == 200 and await resp.text() == "ok"
                except (aiohttp.ClientError, TimeoutError):
                    return False

            await wait_for(get, 20, message="first request through the mTLS pair")
            first = {a.name: await a.leaf_serial() for a in (server, client)}
            seen = {a.name: {first[a.name]} for a in (server, client)}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3 * ttl
            while loop.time() < deadline or min(len(s) for s in seen.values()) < 3:
                if await get():
                    ok += 1
                else:
                    failed += 1
                for a in (server, client):
                    seen[a.name].add(await a.leaf_serial())
                assert loop.time() < deadline + 30, f"rotation too slow: {seen}"
        assert failed == 0, f"{failed} failed of {ok + failed}"
        assert ok > 50
        for a in (server, client):
            assert len(seen[a.name]) >= 3, seen
            assert a.supervisor.starts == 1 and a.supervisor.restarts == 0
            assert a.manager.rotations >= 2
    finally:
        await client.group.stop()
        await server.group.stop()


async def test_killed_envoy_is_restarted_and_gets_its_secrets_again(
    tmp_path: Path, ca_server: casrv.CaServer
) -> None:
    host = netaddr.loopback_host()
    root = make_pod(tmp_path, "victim", ca_server, "helloworld")
    agent = await start_agent(
        "victim",
        root,
        ca_server.port,
        SERVER_ID,
        3600,
        [staticenvoy.mtls_server(host, netaddr.free_port(host), CLIENT_ID)],
    )
    try:
        await wait_for(agent.leaf_serial, 15, message="cert in envoy")
        pid = await agent.supervisor.wait_started()
        os.kill(pid, signal.SIGKILL)
        await wait_for(
            lambda: agent.supervisor.restarts == 1 and agent.supervisor.pid not in (None, pid),
            15,
            message="restart",
        )
        serial = await wait_for(agent.leaf_serial, 15, message="cert in the new envoy")
        assert serial == agent.store.current.serial  # type: ignore[union-attr]
        new_pid = agent.supervisor.pid
    finally:
        await agent.group.stop()
    assert new_pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(new_pid, 0)
