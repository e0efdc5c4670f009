"""The agent's status port 15020 as a Prometheus server scrapes it: `/stats/prometheus` answers the
agent's own series, the running Envoy's and the app's (ISTIO_PROMETHEUS_ANNOTATIONS, the injector's
Prometheus merge) in one Prometheus text exposition; a part that fails is left out and counted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.support import agentproc, casrv, labpod, netaddr
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy
APP_METRICS = (
    "# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\napp_requests_total 7.0\n"
)


@pytest.fixture
async def app_metrics() -> AsyncIterator[tuple[str, int, web.AppRunner]]:
    """The app's own /metrics on the pod's localhost address."""
    host = netaddr.loopback_host()

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=APP_METRICS, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/custom", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    port = int(runner.addresses[0][1])
    try:
        yield host, port, runner
    finally:
        await runner.cleanup()


async def _scrape(ip: str) -> tuple[int, str, dict[str, list[tuple[str, dict[str, str], float]]]]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s,
        s.get(f"http://{ip}:15020/stats/prometheus") as r,
    ):
        text = await r.text()
        families = {
            f.name: [(x.name, x.labels, x.value) for x in f.samples]
            for f in text_string_to_metric_families(text)
        }
        return r.status, r.headers.get("Content-Type", ""), families


async def test_merged_metrics_on_15020(
    tmp_path: Path, ca_server: casrv.CaServer, app_metrics: tuple[str, int, web.AppRunner]
) -> None:
    host, port, runner = app_metrics
    ip = netaddr.loopback_host()
    root = labpod.write(
        tmp_path / "pod",
        token=ca_server.reviewer.issue("sample", "sleep"),
        root_pem=ca_server.mesh.root_pem,
        hosts={"istiod.istio-system.svc": "127.0.0.1"},
    )
    scrape = json.dumps({"scrape": "true", "path": "/custom", "port": str(port)})
    env = agentproc.pod_env(
        root,
        pod="sleep-1",
        namespace="sample",
        sa="sleep",
        ip=ip,
        discovery=f"istiod.istio-system.svc:{ca_server.port}",
        localhost=host,
        extra={"ISTIO_PROMETHEUS_ANNOTATIONS": scrape},
    )
    agent = await agentproc.start(env, root, ip, 15021)
    try:
        await wait_for(lambda: ca_server.issued() >= 1, 20, message="certificate issued")

        async def envoy_in_scrape() -> (
            tuple[int, str, dict[str, list[tuple[str, dict[str, str], float]]]] | None
        ):
            try:
                got = await _scrape(ip)
            except aiohttp.ClientError:
                return None
            return got if "envoy_server_live" in got[2] else None

        status, content_type, families = await wait_for(envoy_in_scrape, 30, message="envoy's stats on 15020")
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4"), content_type
        # the agent's own series, named as Istio's pilot-agent names them
        (csr,) = families["istio_agent_num_outgoing_requests"]
        assert csr[1] == {"request_type": "csr"} and csr[2] >= 1
        ((_, labels, remaining),) = families["istio_agent_cert_expiry_seconds"]
        assert labels == {"resource_name": "default"} and remaining > 3600
        assert "istio_agent_process_cpu_seconds" in families
        # Envoy's, through its admin socket, and the app's own
        assert any(n.startswith("envoy_cluster_manager") for n in families)
        assert families["app_requests"] == [("app_requests_total", {}, 7.0)]

        # the app goes away: Envoy's and the agent's series still come, the failure is counted
        await runner.cleanup()
        status, _, families = await _scrape(ip)
        assert status == 200 and "envoy_server_live" in families and "app_requests" not in families
        failures = {
            s[1]["type"]: s[2] for s in families["istio_agent_scrape_failures"] if s[0].endswith("_total")
        }
        assert failures.get("application") == 1.0, failures
    finally:
        await agent.stop()
