"""Issue 3's scenario with real Envoy sidecars fed by the real `meshplane discovery` watching two dev
clusters: endpoints of both clusters, traffic, endpoint lifecycle, remote secret lifecycle, and a
remote API server outage."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from lightkube.resources import core_v1

from meshplane.discovery import app
from tests.support import envoyproc, httpbackend, kubeobjects, netaddr
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy


async def names_seen(lh: str, host: str, n: int) -> set[str]:
    seen = set()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        for _ in range(n):
            async with s.get(f"http://{host}/hello", proxy=f"http://{lh}:15001") as r:
                assert r.status == 200, await r.text()
                seen.add(json.loads(await r.text())["name"])
    return seen


@contextlib.asynccontextmanager
async def backends(net: netaddr.Loopback, *names: str) -> AsyncIterator[dict[str, str]]:
    """name -> ip, each serving on ip:5000."""
    out: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as es:
        for name in names:
            ip = net.ip()
            await es.enter_async_context(httpbackend.serve(name, ip, 5000))
            out[name] = ip
        yield out


async def test_sidecars_in_both_clusters_follow_the_mesh(
    clusters: tuple[ThreadedCluster, ThreadedCluster], discovery: app.Discovery, tmp_path: Path
) -> None:
    c1, c2 = clusters
    ns = unique("sample")
    host = f"helloworld.{ns}:5000"
    cluster = f"outbound|5000||helloworld.{ns}.svc.cluster.local"
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    net = netaddr.Loopback()
    async with backends(net, "v1", "v2", "v2b") as be, contextlib.AsyncExitStack() as es:
        await kubeobjects.add_service(w1, ns, "helloworld")
        await kubeobjects.set_slice(w1, ns, "helloworld", [(be["v1"], True, False)])
        await kubeobjects.add_service(w2, ns, "helloworld")
        await kubeobjects.set_slice(w2, ns, "helloworld", [(be["v2"], True, False)])
        await w1.create(kubeobjects.remote_secret(c2.kubeconfig))

        sidecars: list[tuple[str, envoyproc.Envoy]] = []
        for cid, delta in (("cluster1", False), ("cluster2", True)):
            lh = net.ip()
            bs = tmp_path / f"sleep-{cid}.json"
            await envoyproc.bootstrap_cli(
                bs,
                discovery=f"127.0.0.1:{discovery.ports.xds_plaintext}",
                pod=f"sleep-{cid}",
                namespace=ns,
                ip=net.ip(),
                localhost=lh,
                delta=delta,
                env={"ISTIO_META_CLUSTER_ID": cid, "ISTIO_META_NETWORK": "network1"},
            )
            sidecars.append((lh, await es.enter_async_context(envoyproc.run(bs, tmp_path))))

        async def hosts_are(expected: dict[str, str]) -> bool:
            for _, envoy in sidecars:
                if await envoy.hosts(cluster) != expected:
                    return False
            return True

        def a(name: str) -> str:
            return f"{be[name]}:5000"

        await wait_for(lambda: hosts_are({a("v1"): "HEALTHY", a("v2"): "HEALTHY"}), 20, what="both clusters")
        for lh, envoy in sidecars:
            await wait_for(lambda e=envoy, x=lh: _has_listener(e, f"{x}_15001"), 10, what="outbound listener")
            assert await names_seen(lh, host, 20) == {"v1", "v2"}
        cds_before = [await e.stat("cluster_manager.cds.update_success") for _, e in sidecars]

        # endpoint added, made unready, terminating, removed in cluster2
        await kubeobjects.set_slice(w2, ns, "helloworld", [(be["v2"], True, False), (be["v2b"], True, False)])
        await wait_for(lambda: hosts_are({a("v1"): "HEALTHY", a("v2"): "HEALTHY", a("v2b"): "HEALTHY"}), 10)
        await kubeobjects.set_slice(
            w2, ns, "helloworld", [(be["v2"], True, False), (be["v2b"], False, False)]
        )
        await wait_for(lambda: hosts_are({a("v1"): "HEALTHY", a("v2"): "HEALTHY", a("v2b"): "UNHEALTHY"}), 10)
        await kubeobjects.set_slice(w2, ns, "helloworld", [(be["v2"], True, False), (be["v2b"], False, True)])
        await wait_for(lambda: hosts_are({a("v1"): "HEALTHY", a("v2"): "HEALTHY", a("v2b"): "DRAINING"}), 10)
        await kubeobjects.set_slice(w2, ns, "helloworld", [(be["v2"], True, False)])
        await wait_for(lambda: hosts_are({a("v1"): "HEALTHY", a("v2"): "HEALTHY"}), 10, what="removed")
        for (_, envoy), before in zip(sidecars, cds_before, strict=True):
            assert await envoy.stat("cluster_manager.cds.update_success") == before, (
                "EDS-only change sent CDS"
            )

        # cluster2's API server goes away: its endpoints stay served from the cache
        await asyncio.to_thread(c2.stop)
        reg = discovery.multicluster.registry_of("cluster2") if discovery.multicluster else None
        await wait_for(lambda: reg is not None and not reg.connected, 15, what="outage noticed")
        assert await hosts_are({a("v1"): "HEALTHY", a("v2"): "HEALTHY"})
        assert await names_seen(sidecars[0][0], host, 10) == {"v1", "v2"}
        await asyncio.to_thread(c2.call, c2.cluster.start)
        w2 = lightkube_client(c2.kubeconfig)
        await kubeobjects.set_slice(w2, ns, "helloworld", [(be["v2"], True, False), (be["v2b"], True, False)])
        await wait_for(lambda: hosts_are({a("v1"): "HEALTHY", a("v2"): "HEALTHY", a("v2b"): "HEALTHY"}), 20)

        # rotate the remote secret's kubeconfig: cluster2's endpoints never leave the sidecars
        gaps: list[dict[str, str]] = []
        stop = asyncio.Event()

        async def watch_gaps() -> None:
            while not stop.is_set():
                hosts = await sidecars[0][1].hosts(cluster)
                if a("v2") not in hosts:
                    gaps.append(hosts)
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch_gaps())
        old = discovery.multicluster.client_for("cluster2") if discovery.multicluster else None
        rotated = kubeobjects.remote_secret(c2.kubeconfig, comment="rotated")
        await w1.patch(
            core_v1.Secret, rotated.metadata.name, {"data": rotated.data}, namespace=kubeobjects.ISTIO_SYSTEM
        )
        await wait_for(
            lambda: (
                discovery.multicluster is not None
                and discovery.multicluster.client_for("cluster2") is not old
            ),
            10,
            what="swap",
        )
        await asyncio.sleep(0.3)  # keep sampling a little after the swap
        stop.set()
        await watcher
        assert gaps == []

        # a broken secret is reported and changes nothing else
        bad = kubeobjects.remote_secret(c2.kubeconfig, name="cluster3")
        bad.data = {"cluster3": "bm90IGEga3ViZWNvbmZpZw=="}
        await w1.create(bad)
        await wait_for(
            lambda: any(
                s.get("id") == "cluster3" and s["syncStatus"] == "error" for s in discovery._clusterz()
            ),
            10,
            what="broken secret reported",
        )
        assert await hosts_are({a("v1"): "HEALTHY", a("v2"): "HEALTHY", a("v2b"): "HEALTHY"})

        # delete the remote secret: cluster2's endpoints leave; re-apply: they come back
        await w1.delete(core_v1.Secret, "istio-remote-secret-cluster2", namespace=kubeobjects.ISTIO_SYSTEM)
        await wait_for(lambda: hosts_are({a("v1"): "HEALTHY"}), 10, what="cluster2 removed")
        assert await names_seen(sidecars[0][0], host, 10) == {"v1"}
        await w1.create(kubeobjects.remote_secret(c2.kubeconfig))
        await wait_for(lambda: hosts_are({a("v1"): "HEALTHY", a("v2"): "HEALTHY", a("v2b"): "HEALTHY"}), 15)
    await w1.close()
    await w2.close()


async def _has_listener(envoy: envoyproc.Envoy, name: str) -> bool:
    return name in await envoy.listeners()
