"""`meshplane agent proxy sidecar` as a process, as the lab runs it: env, pod root, signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from tests.support import agentproc, casrv, labpod, netaddr
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy


async def test_not_ready_without_config_and_clean_sigterm(tmp_path: Path, ca_server: casrv.CaServer) -> None:
    ip = netaddr.loopback_host()
    root = labpod.write(
        tmp_path / "pod",
        token=ca_server.reviewer.issue("sample", "sleep"),
        root_pem=ca_server.mesh.root_pem,
        hosts={"istiod.istio-system.svc": "127.0.0.1"},
    )
    env = agentproc.pod_env(
        root,
        pod="sleep-1",
        namespace="sample",
        sa="sleep",
        ip=ip,
        discovery=f"istiod.istio-system.svc:{ca_server.port}",
        localhost="127.0.4.9",
    )
    agent = await agentproc.start(env, root, ip, 15021)
    try:
        # the certificate is fetched with the pod's token even before Envoy has any config
        await wait_for(lambda: ca_server.issued() >= 1, 20, message="certificate issued")
        status, body = await wait_for(lambda: _answered(agent), 20, message="readiness answers")
        assert status == 503, body
        # once Envoy's admin answers, the reason is its state or the missing config, never ready
        status, body = await wait_for(lambda: _envoy_answered(agent), 20, message="envoy admin up")
        assert status == 503
        assert "config not received" in body or "INITIALIZING" in body, body
        boot = json.loads((root / "etc/istio/proxy/envoy-rev.json").read_text())
        meta = boot["node"]["metadata"]
        assert boot["node"]["id"] == f"sidecar~{ip}~sleep-1.sample~sample.svc.cluster.local"
        assert meta["MESHPLANE_LOCALHOST"] == "127.0.4.9"
        assert (
            meta["CLUSTER_ID"] == "cluster1" and meta["NETWORK"] == "network1" and meta["MESH_ID"] == "mesh1"
        )
        assert "MESHPLANE_SDS" not in meta
        envoy_pid = await wait_for(lambda: _envoy_pid(agent.proc.pid), 20, message="envoy child")
    finally:
        code = await agent.stop()
    assert code == 0
    with pytest.raises(ProcessLookupError):
        os.kill(envoy_pid, 0)
    log = (root / "agent.log").read_text()
    assert "envoy stopped" in log and "agent stopped" in log
    token = (root / "var/run/secrets/tokens/istio-token").read_text()
    assert token not in log


async def test_envoy_does_not_outlive_a_killed_agent(tmp_path: Path, ca_server: casrv.CaServer) -> None:
    ip = netaddr.loopback_host()
    root = labpod.write(
        tmp_path / "pod",
        token=ca_server.reviewer.issue("sample", "sleep"),
        root_pem=ca_server.mesh.root_pem,
        hosts={"istiod.istio-system.svc": "127.0.0.1"},
    )
    env = agentproc.pod_env(
        root,
        pod="sleep-1",
        namespace="sample",
        sa="sleep",
        ip=ip,
        discovery=f"istiod.istio-system.svc:{ca_server.port}",
    )
    agent = await agentproc.start(env, root, ip, 15021)
    try:
        envoy_pid = await wait_for(lambda: _envoy_pid(agent.proc.pid), 20, message="envoy child")
        os.kill(agent.proc.pid, signal.SIGKILL)
        await agent.proc.wait()
        await wait_for(lambda: not _alive(envoy_pid), 10, message="envoy gone with its agent")
    finally:
        await agent.stop()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_bad_env_exits_with_a_named_error(tmp_path: Path) -> None:
    ip = netaddr.loopback_host()
    root = tmp_path / "pod"
    root.mkdir()
    env = agentproc.pod_env(
        root, pod="x", namespace="sample", sa="sleep", ip=ip, discovery="istiod.istio-system.svc:1"
    )
    env["SECRET_TTL"] = "forever"
    agent = await agentproc.start(env, root, ip, 15021)
    code = await asyncio.wait_for(agent.proc.wait(), 30)
    assert code == 1
    assert "invalid duration 'forever'" in (root / "agent.log").read_text()


async def _answered(agent: agentproc.AgentProcess) -> tuple[int, str] | None:
    status, body = await agent.ready()
    return (status, body) if status else None


async def _envoy_answered(agent: agentproc.AgentProcess) -> tuple[int, str] | None:
    status, body = await agent.ready()
    return (status, body) if status and "admin unreachable" not in body else None


def _envoy_pid(parent: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and "envoy" in stat.split("(", 1)[1].split(")", 1)[0]:
            return int(entry.name)
    return None
