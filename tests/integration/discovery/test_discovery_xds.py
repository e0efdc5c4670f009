"""`meshplane discovery` end to end with an xDS test client: both clusters' endpoints, debug pages."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp
from envoy.config.endpoint.v3 import endpoint_pb2

from meshplane.discovery import app
from meshplane.xds import resources
from tests.support import kubeobjects, xdsclient
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for


def eds_addresses(any_msg: object) -> set[str]:
    cla = endpoint_pb2.ClusterLoadAssignment()
    any_msg.Unpack(cla)  # type: ignore[attr-defined]
    return {lb.endpoint.address.socket_address.address for loc in cla.endpoints for lb in loc.lb_endpoints}


SRC = str(Path(__file__).resolve().parents[3] / "src")


async def meshplane(*args: str) -> str:
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meshplane",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def get_json(url: str) -> object:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return await r.json()


async def test_endpoints_of_both_clusters_and_debug_pages(
    clusters: tuple[ThreadedCluster, ThreadedCluster], discovery: app.Discovery
) -> None:
    c1, c2 = clusters
    ns = unique("sample")
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    await kubeobjects.add_service(w1, ns, "helloworld")
    await kubeobjects.set_slice(w1, ns, "helloworld", [("127.0.1.5", True, False)])
    await kubeobjects.add_service(w2, ns, "helloworld")
    await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.5", True, False)])
    await w1.create(kubeobjects.remote_secret(c2.kubeconfig))
    cluster = f"outbound|5000||helloworld.{ns}.svc.cluster.local"
    node = xdsclient.make_node(
        xdsclient.sidecar_node_id("sleep-1", ns, "127.0.1.9"), {"CLUSTER_ID": "cluster1"}
    )
    base = f"http://127.0.0.1:{discovery.ports.monitoring}"
    for delta in (False, True):
        async with xdsclient.XdsClient(
            f"127.0.0.1:{discovery.ports.xds_plaintext}", node, delta=delta
        ) as client:
            await client.subscribe(resources.TYPE_CDS)
            await client.wait_resource(resources.TYPE_CDS, cluster)
            await client.subscribe(resources.TYPE_EDS, [cluster])
            await client.wait_resource(
                resources.TYPE_EDS, cluster, lambda a: eds_addresses(a) == {"127.0.1.5", "127.0.2.5"}
            )
            syncz = await get_json(base + "/debug/syncz")
            assert any(p["proxy"].startswith("sleep-1") for p in syncz)  # type: ignore[union-attr,index]
    await wait_for(lambda: discovery.ready(), what="discovery ready")
    async with aiohttp.ClientSession() as s, s.get(base + "/ready") as r:
        assert r.status == 200
    clusterz = await get_json(base + "/debug/clusterz")
    assert clusterz == [
        {"id": "cluster1", "secretName": "", "syncStatus": "synced"},
        {"id": "cluster2", "secretName": "istio-system/istio-remote-secret-cluster2", "syncStatus": "synced"},
    ]
    registryz = await get_json(base + "/debug/registryz")
    entry = next(e for e in registryz if e["hostname"] == f"helloworld.{ns}.svc.cluster.local")  # type: ignore[union-attr,index]
    assert set(entry["endpoints"]) == {"cluster1", "cluster2"}
    async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
        text = await r.text()
    assert 'pilot_k8s_reg_events{cluster="cluster2",event="add",type="EndpointSlice"}' in text
    assert (
        'istiod_remote_cluster_sync_status{cluster="cluster2",cluster_type="remote",status="synced"} 1.0'
        in text
    )
    assert "pilot_xds_pushes" in text

    # the CLI reads the same page, as istioctl remote-clusters does
    table = await meshplane("remote-clusters", "--istiod-url", base)
    lines = [line.split() for line in table.splitlines()]
    assert lines[0] == ["NAME", "SECRET", "STATUS", "ISTIOD", "REVISION"]
    assert [
        "cluster2",
        "istio-system/istio-remote-secret-cluster2",
        "synced",
        base.removeprefix("http://"),
        "default",
    ] in lines
    as_json = json.loads(await meshplane("remote-clusters", "--istiod-url", base, "-o", "json"))
    assert {r["name"]: r["status"] for r in as_json} == {"cluster1": "synced", "cluster2": "synced"}
    await w1.close()
    await w2.close()
