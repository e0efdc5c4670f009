"""The console's JSON API and pages on `meshplane discovery`'s monitoring port, with two dev clusters
and a test proxy: clusters with status and propagation, services per cluster, proxies' sync state,
a broken remote secret shown as `error` with its reason and without its token."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from typing import Any

import aiohttp
import yaml
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1

from meshplane.discovery import app
from meshplane.xds import resources
from tests.integration.discovery.test_discovery_xds import SRC, eds_addresses, meshplane
from tests.support import kubeobjects, xdsclient
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for

TOKEN = "s3cr3t-remote-token-do-not-show"


def broken_secret(name: str) -> core_v1.Secret:
    """A remote secret whose kubeconfig names a context it does not have (and carries a token)."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": name, "user": {"token": TOKEN}}],
        "contexts": [],
        "current-context": "missing",
    }
    return core_v1.Secret(
        metadata=ObjectMeta(
            name=f"istio-remote-secret-{name}",
            namespace=kubeobjects.ISTIO_SYSTEM,
            labels={"istio/multiCluster": "true"},
        ),
        data={name: base64.b64encode(yaml.safe_dump(kubeconfig).encode()).decode()},
    )


async def get(base: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(base + path, allow_redirects=False) as r:
        return r.status, await r.text()


async def api(base: str, view: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/console/api/{view}") as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_console_api_and_pages(
    clusters: tuple[ThreadedCluster, ThreadedCluster], discovery: app.Discovery
) -> None:
    c1, c2 = clusters
    ns = unique("sample")
    host = f"helloworld.{ns}.svc.cluster.local"
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    await kubeobjects.add_service(w1, ns, "helloworld")
    await kubeobjects.set_slice(w1, ns, "helloworld", [("127.0.1.5", True, False)])
    await kubeobjects.add_service(w2, ns, "helloworld")
    await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.5", False, False)])
    await w1.create(kubeobjects.remote_secret(c2.kubeconfig))
    await w1.create(broken_secret("cluster3"))
    base = f"http://127.0.0.1:{discovery.ports.monitoring}"
    cluster = f"outbound|5000||{host}"
    node = xdsclient.make_node(
        xdsclient.sidecar_node_id("sleep-1", ns, "127.0.1.9"),
        {"CLUSTER_ID": "cluster1", "LABELS": {"app": "sleep"}, "NAMESPACE": ns},
    )
    client = xdsclient.XdsClient(f"127.0.0.1:{discovery.ports.xds_plaintext}", node)
    await client.connect()
    try:
        await client.subscribe(resources.TYPE_CDS)
        await client.wait_resource(resources.TYPE_CDS, cluster)
        await client.subscribe(resources.TYPE_EDS, [cluster])
        await client.wait_resource(resources.TYPE_EDS, cluster, lambda a: "127.0.1.5" in eds_addresses(a))
        await client.subscribe(resources.TYPE_LDS)

        # clusters: status per cluster, informers, a broken secret as `error` with its reason
        async def clusters_ready() -> Any:
            got = {c["id"]: c for c in (await api(base, "clusters"))["clusters"]}
            return got if {"cluster1", "cluster2", "cluster3"} <= got.keys() else None

        got = await wait_for(clusters_ready, what="three clusters listed")
        assert got["cluster2"]["status"] == "synced"
        assert got["cluster2"]["secret"] == "istio-system/istio-remote-secret-cluster2"
        assert {i["kind"] for i in got["cluster2"]["informers"]} >= {"Service", "EndpointSlice", "Pod"}
        slices = next(i for i in got["cluster2"]["informers"] if i["kind"] == "EndpointSlice")
        assert slices["synced"] and slices["objects"] >= 1 and got["cluster2"]["last_event"]
        assert got["cluster3"]["status"] == "error" and "no contexts" in got["cluster3"]["reason"]
        # cluster2's endpoint change reached the proxy: the propagation figure has a sample
        await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.5", True, False)])
        await wait_for(lambda: len(client.of_type(resources.TYPE_EDS)) >= 2, what="a second EDS push")

        async def cluster2_propagation() -> Any:
            c = next(c for c in (await api(base, "clusters"))["clusters"] if c["id"] == "cluster2")
            return c["propagation"] if c["propagation"]["samples"] else None

        prop = await wait_for(cluster2_propagation, what="cluster2 propagation sample")
        assert 0 < prop["p50"] <= prop["p99"] < 30

        # services: endpoints per cluster with address, health, locality, network
        async def service() -> Any:
            svc = next(s for s in (await api(base, "services"))["services"] if s["hostname"] == host)
            ready = svc["endpoints"].get("cluster2", [{}])[0].get("health") == "HEALTHY"
            return svc if ready else None

        svc = await wait_for(service, what="cluster2's endpoint made ready in the services view")
        assert {c: [e["address"] for e in eps] for c, eps in svc["endpoints"].items()} == {
            "cluster1": ["127.0.1.5"],
            "cluster2": ["127.0.2.5"],
        }
        assert svc["endpoints"]["cluster1"][0]["health"] == "HEALTHY"
        assert svc["ports"] == [{"name": "http", "port": 5000, "protocol": "HTTP"}]

        # proxies: per-type sync state as proxy-status shows it
        (row,) = [p for p in (await api(base, "proxies"))["proxies"] if p["id"].startswith("sleep-1")]
        assert row["cluster"] == "cluster1" and row["workload"] == f"cluster1/{ns}/sleep"
        assert row["xds"]["cds"]["status"] == "SYNCED" and row["xds"]["eds"]["status"] == "SYNCED"
        assert "rds" not in row["xds"]

        # a NACK is shown with its error
        client.nack_next(resources.TYPE_LDS, "listener 0.0.0.0_5000: bad filter")
        await kubeobjects.add_service(w1, ns, "another")

        async def nacked() -> Any:
            p = next(p for p in (await api(base, "proxies"))["proxies"] if p["id"].startswith("sleep-1"))
            return p["xds"]["lds"]["last_nack"]

        nack = await wait_for(nacked, what="LDS NACK shown")
        assert nack["message"] == "listener 0.0.0.0_5000: bad filter"

        # graph: both clusters as groups, the service and its workloads; no agent here, so no
        # traffic edges (nothing invented) and the proxy's scrape error says why
        g = await api(base, "graph")
        assert g["clusters"] == ["cluster1", "cluster2"]
        ids = {n["id"] for n in g["nodes"]}
        assert {f"svc/{host}", f"cluster1/{ns}/sleep"} <= ids
        assert g["edges"] == [] and "Envoy" in g["source"]

        async def scrape_error() -> Any:
            p = next(p for p in (await api(base, "proxies"))["proxies"] if p["id"].startswith("sleep-1"))
            return p["stats_error"]

        assert "127.0.1.9:15021/stats/upstreams" in await wait_for(scrape_error, what="scrape error shown")

        # the proxy's own API: sync state, and why Envoy's config could not be read
        proxy_id = row["id"]
        detail = await api(base, f"proxies/{proxy_id}")
        assert detail["proxy"]["id"] == proxy_id and detail["config"] is None and detail["config_error"]
        status, _ = await get(base, "/console/api/proxies/nope.nowhere")
        assert status == 404
        status, text = await get(base, "/console/api/nope")
        assert status == 404 and "graph" in text

        # pages: server-rendered, each its own URL, a fragment for live updates, static files
        status, _ = await get(base, "/console/")
        assert status == 302
        for view in ("graph", "clusters", "services", "proxies", "config"):
            status, text = await get(base, f"/console/{view}")
            assert (
                status == 200
                and "/console/static/console.js" in text
                and "Where these numbers come from" in text
            )
            status, fragment = await get(base, f"/console/{view}?fragment=1")
            assert status == 200 and "<html" not in fragment
            assert TOKEN not in text and "BEGIN CERTIFICATE" not in text and "client-key-data" not in text
        status, text = await get(base, "/console/clusters")
        assert 'data-status="error"' in text and "cluster3" in text
        status, text = await get(base, "/console/graph")
        assert "<svg" in text and 'data-cluster="cluster2"' in text
        status, js = await get(base, "/console/static/console.js")
        assert status == 200 and "fragment" in js
        for view in ("clusters", "graph", "proxies", "services", "config"):
            assert TOKEN not in str(await api(base, view))

        # `meshplane dashboard --no-browser` prints the console's URL; a dead control plane is an error
        assert (
            await meshplane("dashboard", "--istiod-url", base, "--no-browser")
        ).strip() == f"{base}/console/"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "meshplane", "dashboard",
            "--istiod-url", "http://127.0.0.1:1", "--no-browser",
            env=dict(os.environ, PYTHONPATH=SRC),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode == 1 and not out and "127.0.0.1:1/console/api/clusters" in err.decode()
    finally:
        await client.close()
        await w1.close()
        await w2.close()
