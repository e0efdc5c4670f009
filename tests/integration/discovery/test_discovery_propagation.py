"""meshplane_config_propagation_seconds with two dev clusters and two test proxies: an EndpointSlice
written in cluster2 is measured from the watch to the last proxy's ACK, as the test sees both."""

from __future__ import annotations

import re
import time

import aiohttp
from prometheus_client import parser

from meshplane.discovery import app
from meshplane.xds import resources
from tests.integration.discovery.test_discovery_xds import eds_addresses, meshplane
from tests.support import kubeobjects, xdsclient
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for

DURATION = r"\d+(\.\d+)?(ms|s|m)"


async def propagation(
    base: str, cluster: str, type_: str, name: str = "meshplane_config_propagation_seconds"
) -> tuple[float, float]:
    """(count, sum) of histogram `name`{cluster,type} (no labels: cluster="") from /metrics."""
    async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
        text = await r.text()
    got = {"count": 0.0, "sum": 0.0}
    for fam in parser.text_string_to_metric_families(text):
        if fam.name != name:
            continue
        for smp in fam.samples:
            if smp.labels.get("cluster", "") == cluster and smp.labels.get("type", "") == type_:
                for k in got:
                    if smp.name.endswith("_" + k):
                        got[k] = smp.value
    return got["count"], got["sum"]


async def test_cluster2_slice_change_is_measured_to_the_last_proxys_ack(
    clusters: tuple[ThreadedCluster, ThreadedCluster], discovery: app.Discovery
) -> None:
    c1, c2 = clusters
    ns = unique("sample")
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    await kubeobjects.add_service(w1, ns, "helloworld")
    await kubeobjects.add_service(w2, ns, "helloworld")
    await kubeobjects.add_service(w2, ns, "unwatched")
    await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.5", True, False)])
    await w1.create(kubeobjects.remote_secret(c2.kubeconfig))
    cluster = f"outbound|5000||helloworld.{ns}.svc.cluster.local"
    base = f"http://127.0.0.1:{discovery.ports.monitoring}"
    target = f"127.0.0.1:{discovery.ports.xds_plaintext}"
    proxies = [
        xdsclient.XdsClient(
            target,
            xdsclient.make_node(xdsclient.sidecar_node_id(pod, ns, ip), {"CLUSTER_ID": "cluster1"}),
        )
        for pod, ip in (("sleep-a", "127.0.1.9"), ("sleep-b", "127.0.1.10"))
    ]
    for p in proxies:
        await p.connect()
    try:
        for p in proxies:
            await p.subscribe(resources.TYPE_CDS)
            await p.wait_resource(resources.TYPE_CDS, cluster)
            await p.subscribe(resources.TYPE_EDS, [cluster])
            await p.wait_resource(resources.TYPE_EDS, cluster, lambda a: eds_addresses(a) == {"127.0.2.5"})
        await wait_for(lambda: discovery.ads is not None and discovery.ads.propagation.in_flight == 0)
        before = await propagation(base, "cluster2", "eds")
        converged = (await propagation(base, "", "", "pilot_proxy_convergence_time"))[0]
        a, b = proxies
        for p in proxies:
            p.auto_ack = False

        t_write = time.monotonic()
        await kubeobjects.set_slice(w2, ns, "helloworld", [("127.0.2.6", True, False)])
        for p in proxies:
            await p.wait_resource(resources.TYPE_EDS, cluster, lambda a: eds_addresses(a) == {"127.0.2.6"})
        first_received = min(r.at for p in proxies for r in p.of_type(resources.TYPE_EDS) if r.at >= t_write)
        await a.ack(resources.TYPE_EDS)

        async def convergences() -> float:
            return (await propagation(base, "", "", "pilot_proxy_convergence_time"))[0] - converged

        # the first proxy converged at its ACK (pilot_proxy_convergence_time ends at the ACK, not at
        # the send); the other has not ACKed: the change has not propagated yet
        await wait_for(lambda: convergences(), what="the first proxy's ACK processed")
        assert await convergences() == 1
        assert await propagation(base, "cluster2", "eds") == before
        t_last_ack = time.monotonic()
        await b.ack(resources.TYPE_EDS)

        async def recorded() -> bool:
            return (await propagation(base, "cluster2", "eds"))[0] == before[0] + 1

        await wait_for(recorded, what="cluster2's eds propagation recorded")
        t_seen = time.monotonic()
        assert await convergences() == 2
        value = (await propagation(base, "cluster2", "eds"))[1] - before[1]
        # started between the write and the first proxy receiving it; ended between the last ACK
        # being sent and the test seeing the sample
        assert t_last_ack - first_received <= value <= t_seen - t_write, (value, t_seen - t_write)

        # a change in cluster2 that no proxy subscribes to is pushed to nobody and records nothing
        pushes = discovery.queue.pushes if discovery.queue else 0
        await kubeobjects.set_slice(w2, ns, "unwatched", [("127.0.2.7", True, False)])
        await wait_for(lambda: discovery.queue is not None and discovery.queue.pushes > pushes)
        await wait_for(lambda: discovery.ads is not None and discovery.ads.propagation.in_flight == 0)
        assert (await propagation(base, "cluster2", "eds"))[0] == before[0] + 1

        # remote-clusters -o wide shows each cluster's recent p50/p99
        wide = await meshplane("remote-clusters", "--istiod-url", base, "-o", "wide")
        lines = [line.split() for line in wide.splitlines()]
        assert lines[0] == [
            "NAME",
            "SECRET",
            "STATUS",
            "ISTIOD",
            "REVISION",
            "PROPAGATION-P50",
            "P99",
            "SAMPLES",
        ]
        row = next(r for r in lines if r[0] == "cluster2")
        assert re.fullmatch(DURATION, row[5]) and re.fullmatch(DURATION, row[6]) and int(row[7]) >= 1, row
    finally:
        for p in proxies:
            await p.close()
        await w1.close()
        await w2.close()
