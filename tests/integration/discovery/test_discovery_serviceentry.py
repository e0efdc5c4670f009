"""A ServiceEntry applied with the real kubectl reaches `meshplane discovery`'s sidecars: its host
becomes an `outbound|PORT||HOST` cluster (STRICT_DNS for resolution DNS) next to the Kubernetes
services; an invalid entry is reported with the field named and leaves the valid one in place;
deleting the entry removes the cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

from envoy.config.cluster.v3 import cluster_pb2

from meshplane.discovery import app
from meshplane.xds import resources
from tests.integration.discovery.test_discovery_sidecar import _crds
from tests.support import xdsclient
from tests.support.clusters import ThreadedCluster, kubectl, unique
from tests.support.wait import wait_for

ENTRY = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {ns}}}
spec:
  hosts: [{host}]
  ports: [{{number: 8000, name: http, protocol: HTTP}}]
  resolution: {resolution}
"""
CLUSTER = "outbound|8000||api.example.test"


def _cluster(client: xdsclient.XdsClient) -> cluster_pb2.Cluster | None:
    raw = client.view(resources.TYPE_CDS).resources.get(CLUSTER)
    if raw is None:
        return None
    c = cluster_pb2.Cluster()
    raw.Unpack(c)
    return c


async def test_service_entry_becomes_a_sidecar_cluster(
    clusters: tuple[ThreadedCluster, ThreadedCluster], discovery: app.Discovery, tmp_path: Path
) -> None:
    c1, _ = clusters
    kc = c1.write_kubeconfig(tmp_path / "kubeconfig")
    await asyncio.to_thread(kubectl, kc, "apply", "-f", "-", input_text=_crds())
    ns = unique("sample")
    await asyncio.to_thread(kubectl, kc, "create", "namespace", ns)
    node = xdsclient.make_node(
        xdsclient.sidecar_node_id("sleep", ns, "127.0.1.9"), {"CLUSTER_ID": "cluster1"}
    )
    async with xdsclient.XdsClient(f"127.0.0.1:{discovery.ports.xds_plaintext}", node) as client:  # type: ignore[arg-type]
        await client.subscribe(resources.TYPE_CDS)
        good = ENTRY.format(name="api", ns=ns, host="api.example.test", resolution="DNS")
        await asyncio.to_thread(kubectl, kc, "apply", "-f", "-", input_text=good)
        await client.wait(lambda c: _cluster(c) is not None, 20, what="the entry's cluster")
        got = _cluster(client)
        assert got is not None and got.type == cluster_pb2.Cluster.STRICT_DNS

        bad = ENTRY.format(name="bad", ns=ns, host="db.example.test", resolution="STATIC")
        await asyncio.to_thread(kubectl, kc, "apply", "-f", "-", input_text=bad)
        assert discovery.config is not None
        cfg = discovery.config

        def reported() -> bool:
            return any(f"{ns}/bad" in p and "spec.endpoints" in p for p in cfg.problems)

        await wait_for(reported, 20, what="the invalid entry reported")
        assert _cluster(client) is not None  # the valid entry stays

        await asyncio.to_thread(kubectl, kc, "delete", "serviceentry", "api", "bad", "-n", ns)
        await client.wait(lambda c: _cluster(c) is None, 20, what="the cluster removed")
        await wait_for(lambda: not reported(), 20, what="the invalid entry's report gone")
