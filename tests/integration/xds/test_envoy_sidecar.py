"""A real Envoy sidecar, bootstrapped by `meshplane agent bootstrap`, fed by the ADS server with
helloworld.sample endpoints in two clusters (SotW and Delta)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshplane.model import endpoint
from meshplane.model.ids import ClusterId
from tests.support import envoyproc, httpbackend, memsource, netaddr, stack
from tests.support import meshdata as md
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy
CLUSTER = "outbound|5000||helloworld.sample.svc.cluster.local"
C1, C2 = ClusterId("cluster1"), ClusterId("cluster2")


@contextlib.asynccontextmanager
async def _backends(net: netaddr.Loopback, *names: str) -> AsyncIterator[dict[str, tuple[str, int]]]:
    out: dict[str, tuple[str, int]] = {}
    async with contextlib.AsyncExitStack() as es:
        for name in names:
            ip = net.ip()
            out[name] = (ip, await es.enter_async_context(httpbackend.serve(name, ip)))
        yield out


async def _names_seen(url: str, n: int, **kw: Any) -> list[str]:
    seen = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        for _ in range(n):
            async with s.get(url, **kw) as r:
                assert r.status == 200, await r.text()
                seen.append(json.loads(await r.text())["name"])
    return seen


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_sidecar_reaches_both_clusters_and_follows_endpoint_changes(
    delta: bool, tmp_path: Path
) -> None:
    net = netaddr.Loopback()
    source = memsource.MemorySource()
    hello = source.add_service("helloworld", "sample", (("http", 5000),))
    istiod = source.add_service("istiod", "istio-system", (("grpc-xds", 15010),))
    source.endpoints[istiod.hostname] = {
        C1: (md.ep("10.1.0.99", C1, {"grpc-xds": 15010}),),
        C2: (md.ep("10.2.0.99", C2, {"grpc-xds": 15010}),),
    }
    async with _backends(net, "v1", "v2", "v2b") as be, contextlib.AsyncExitStack() as es:

        def ep(
            name: str, cluster: ClusterId, health: endpoint.Health = endpoint.Health.HEALTHY
        ) -> endpoint.Endpoint:
            ip, port = be[name]
            return md.ep(ip, cluster, {"http": port}, health=health, workload=name)

        def addr(name: str) -> str:
            return f"{be[name][0]}:{be[name][1]}"

        source.endpoints[hello.hostname] = {C1: (ep("v1", C1),), C2: (ep("v2", C2),)}
        st = await stack.start(source)
        es.push_async_callback(st.stop)
        # one sidecar per cluster, each bootstrapped by `meshplane agent bootstrap`
        sidecars = []
        for cluster in (C1, C2):
            lh = net.ip()
            bs = tmp_path / f"sleep-{cluster}.json"
            await envoyproc.bootstrap_cli(
                bs,
                discovery=st.target,
                pod=f"sleep-{cluster}",
                namespace="sample",
                ip=net.ip(),
                localhost=lh,
                delta=delta,
                env={"ISTIO_META_CLUSTER_ID": cluster},
            )
            sidecars.append((cluster, lh, await es.enter_async_context(envoyproc.run(bs, tmp_path))))

        async def hosts_are(expected: dict[str, str]) -> bool:
            for _, _, envoy in sidecars:
                if await envoy.hosts(CLUSTER) != expected:
                    return False
            return True

        await wait_for(lambda: hosts_are({addr("v1"): "HEALTHY", addr("v2"): "HEALTHY"}), 20, what="EDS")
        for cluster, lh, envoy in sidecars:

            async def outbound_listener_active(lh: str = lh, envoy: envoyproc.Envoy = envoy) -> bool:
                return f"{lh}_15001" in await envoy.listeners() and bool(
                    await envoy.stat("listener_manager.total_listeners_active")
                )

            await wait_for(outbound_listener_active, 10, what="LDS")
            # istiod is cluster-local: each sidecar sees only its own cluster's istiod
            own = "10.1.0.99:15010" if cluster == C1 else "10.2.0.99:15010"
            assert await envoy.hosts("outbound|15010||istiod.istio-system.svc.cluster.local") == {
                own: "HEALTHY"
            }
            # traffic through the explicit outbound listener reaches both clusters, by Host and
            # as an HTTP proxy (absolute-form request target)
            by_host = await _names_seen(
                f"http://{lh}:15001/hello", 20, headers={"Host": "helloworld.sample:5000"}
            )
            assert set(by_host) == {"v1", "v2"}, cluster
            as_proxy = await _names_seen(
                "http://helloworld.sample:5000/hello", 10, proxy=f"http://{lh}:15001"
            )
            assert set(as_proxy) == {"v1", "v2"}, cluster

        lh = sidecars[0][1]  # traffic checks go through the cluster1 sidecar
        cds_before = [await e.stat("cluster_manager.cds.update_success") for _, _, e in sidecars]
        assert min(cds_before) >= 1

        async def eds_push(eps: dict[ClusterId, tuple[endpoint.Endpoint, ...]]) -> None:
            source.endpoints[hello.hostname] = eps
            await st.push(full=False, eds_hosts=frozenset({hello.hostname}))

        # added in cluster2: appears (in both sidecars) and takes traffic
        await eds_push({C1: (ep("v1", C1),), C2: (ep("v2", C2), ep("v2b", C2))})
        await wait_for(
            lambda: hosts_are({addr("v1"): "HEALTHY", addr("v2"): "HEALTHY", addr("v2b"): "HEALTHY"}), 10
        )
        assert "v2b" in await _names_seen(
            f"http://{lh}:15001/", 30, headers={"Host": "helloworld.sample.svc.cluster.local:5000"}
        )

        # made unready: kept but UNHEALTHY, so no new requests go to it
        await eds_push({C1: (ep("v1", C1),), C2: (ep("v2", C2), ep("v2b", C2, endpoint.Health.UNHEALTHY))})
        await wait_for(
            lambda: hosts_are({addr("v1"): "HEALTHY", addr("v2"): "HEALTHY", addr("v2b"): "UNHEALTHY"}), 10
        )
        assert "v2b" not in await _names_seen(f"http://{lh}:15001/", 20, headers={"Host": "helloworld:5000"})

        # terminating: DRAINING, Envoy stops sending it new requests
        await eds_push({C1: (ep("v1", C1),), C2: (ep("v2", C2, endpoint.Health.DRAINING),)})
        await wait_for(lambda: hosts_are({addr("v1"): "HEALTHY", addr("v2"): "DRAINING"}), 10)
        assert set(await _names_seen(f"http://{lh}:15001/", 10, headers={"Host": "helloworld:5000"})) == {
            "v1"
        }

        # removed: gone
        await eds_push({C1: (ep("v1", C1),)})
        await wait_for(lambda: hosts_are({addr("v1"): "HEALTHY"}), 10)

        # none of the endpoint-only changes reached Envoy's CDS (Envoy would pause EDS for it)
        for (_, _, envoy), before in zip(sidecars, cds_before, strict=True):
            assert await envoy.stat("cluster_manager.cds.update_success") == before
            assert await envoy.stat(f"cluster.{CLUSTER}.update_success") >= 5
            assert await envoy.stat("cluster_manager.cds.update_rejected") == 0
            assert await envoy.stat("listener_manager.lds.update_rejected") == 0
