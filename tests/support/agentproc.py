"""Runs `meshplane agent proxy` as a subprocess the way the lab runs it, and stops it by PID."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from meshplane.agent import admin, config, uds

REPO = Path(__file__).resolve().parents[2]


def pod_env(
    root: Path,
    *,
    pod: str,
    namespace: str,
    sa: str,
    ip: str,
    discovery: str,
    cluster_id: str = "cluster1",
    localhost: str = "127.0.0.1",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The injected istio-proxy env (SPEC.md §6) plus the lab's pod root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ISTIO_", "POD_", "MESHPLANE_"))}
    env.update(
        {
            "PYTHONPATH": str(REPO / "src"),
            "MESHPLANE_POD_ROOT": str(root),
            "POD_NAME": pod,
            "POD_NAMESPACE": namespace,
            "INSTANCE_IP": ip,
            "SERVICE_ACCOUNT": sa,
            "HOST_IP": ip,
            "CA_ADDR": discovery,
            "PILOT_CERT_PROVIDER": "istiod",
            "PROXY_CONFIG": json.dumps({"discoveryAddress": discovery}),
            "ISTIO_META_CLUSTER_ID": cluster_id,
            "ISTIO_META_NETWORK": "network1",
            "ISTIO_META_MESH_ID": "mesh1",
            "ISTIO_META_MESHPLANE_LOCALHOST": localhost,
            "ISTIO_META_INTERCEPTION_MODE": "NONE",  # loopback: nothing captured, explicit layout
            "TRUST_DOMAIN": "cluster.local",
            "TERMINATION_DRAIN_DURATION_SECONDS": "1",
        }
    )
    env.update(extra or {})
    return env


@dataclass
class AgentProcess:
    proc: asyncio.subprocess.Process
    root: Path
    ip: str
    status_port: int

    @property
    def admin(self) -> admin.AdminClient:
        # the same pod-root mapping the agent applies (runtime/podroot.py)
        return admin.AdminClient(uds.address(self.root / config.ADMIN_SOCKET.lstrip("/")))

    async def ready(self) -> tuple[int, str]:
        url = f"http://{self.ip}:{self.status_port}/healthz/ready"
        try:
            async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status, await r.text()
        except (aiohttp.ClientError, TimeoutError) as e:
            return 0, repr(e)

    async def stop(self, grace: float = 20.0) -> int:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        return self.proc.returncode or 0


def istio_args(kind: str, namespace: str) -> list[str]:
    """The args Istio's injector gives the istio-proxy container (pilot-agent), `$(POD_NAMESPACE)`
    already expanded as the kubelet does."""
    return [
        "proxy",
        kind,
        "--domain",
        f"{namespace}.svc.cluster.local",
        "--proxyLogLevel=warning",
        "--proxyComponentLogLevel=misc:error",
        "--log_output_level=default:info",
    ]


async def start(
    env: dict[str, str],
    root: Path,
    ip: str,
    status_port: int,
    kind: str = "sidecar",
    prefix: Sequence[str] = (),
) -> AgentProcess:
    """Start the agent; `prefix` runs it through other commands that exec it (`ip netns exec NS`,
    `setpriv …`), so the PID held is still the agent's."""
    log = (root / "agent.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        *prefix,
        sys.executable,
        "-m",
        "meshplane",
        "agent",
        *istio_args(kind, env["POD_NAMESPACE"]),
        "--status-port",
        str(status_port),
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    return AgentProcess(proc, root, ip, status_port)
