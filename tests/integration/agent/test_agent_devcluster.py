"""The agent with real service-account tokens from dev clusters (TokenRequest, audience istio-ca),
checked by TokenReview on the cluster the pod claims (primary's own, or a remote's reader client).

cluster1 pod: accepted at once. cluster2 pod: refused while the control plane has no credentials
for cluster2 (the agent retries, Envoy stays unready), accepted as soon as they are registered
(what applying the remote secret does). A token with the wrong audience is refused until the
kubelet writes a good one, which the agent reads on its next attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from meshplane.model.ids import ClusterId
from meshplane.security import tokenreview
from tests.support import agentproc, istiod, labpod, memsource, netaddr
from tests.support.loopcluster import Cluster, start_cluster
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dev_clusters(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Cluster, Cluster]]:
    base = tmp_path_factory.mktemp("agent-clusters")
    c1 = await start_cluster("cluster1", base / "cluster1")
    c2 = await start_cluster("cluster2", base / "cluster2")
    try:
        for c in (c1, c2):
            await c.service_account("sample", "sleep")
        yield c1, c2
    finally:
        for c in (c1, c2):
            await c.admin.close()
            await c.dev.stop()


async def _ready(agent: agentproc.AgentProcess) -> bool:
    return (await agent.ready())[0] == 200


@pytest.mark.asyncio(loop_scope="module")
async def test_tokens_reviewed_on_the_claimed_cluster(
    tmp_path: Path, dev_clusters: tuple[Cluster, Cluster]
) -> None:
    c1, c2 = dev_clusters
    src = memsource.MemorySource()
    src.add_service("helloworld", "sample", (("http", 5000),))
    plane = istiod.Istiod(src, reviewer=tokenreview.KubeTokenReviewer(c1.admin, ClusterId("cluster1")))  # type: ignore[arg-type]
    await plane.start()
    await plane.push("startup")
    agents: list[agentproc.AgentProcess] = []

    async def pod(name: str, cluster: Cluster, token: str) -> agentproc.AgentProcess:
        ip = netaddr.loopback_host()
        root = labpod.write(
            tmp_path / name,
            token=token,
            root_pem=plane.mesh.root_pem,
            hosts={"istiod.istio-system.svc": plane.host},
        )
        env = agentproc.pod_env(
            root,
            pod=name,
            namespace="sample",
            sa="sleep",
            ip=ip,
            discovery=plane.address,
            cluster_id=cluster.name,
            localhost=netaddr.loopback_host(),
        )
        agent = await agentproc.start(env, root, ip, 15021)
        agents.append(agent)
        return agent

    try:
        # cluster1: the primary's own TokenReview accepts the pod's projected token
        a1 = await pod("sleep-c1", c1, await c1.token("sample", "sleep"))
        await wait_for(lambda: _ready(a1), 30, message="cluster1 pod ready")

        # cluster2 before its remote secret: refused, retried, not ready
        a2 = await pod("sleep-c2", c2, await c2.token("sample", "sleep"))
        log2 = a2.root / "agent.log"
        await wait_for(
            lambda: 'client claims to be in cluster "cluster2"' in log2.read_text(), 30, message="refusal"
        )
        assert (await a2.ready())[0] == 503
        # the remote secret gives the control plane cluster2's TokenReview: the next retry succeeds
        plane.remotes.set(
            ClusterId("cluster2"),
            tokenreview.KubeTokenReviewer(await c2.reader_client(), ClusterId("cluster2")),
        )
        await wait_for(lambda: _ready(a2), 40, message="cluster2 pod ready after the remote secret")

        # a token for another audience is refused until the kubelet writes a good one
        a3 = await pod("sleep-aud", c1, await c1.token("sample", "sleep", audiences=["api"]))
        log3 = a3.root / "agent.log"
        await wait_for(
            lambda: "certificate request failed" in log3.read_text(), 30, message="audience refusal"
        )
        labpod.rotate_token(a3.root, await c1.token("sample", "sleep"))
        await wait_for(lambda: _ready(a3), 40, message="ready after the token was rotated")
        for a in agents:
            token = (a.root / "var/run/secrets/tokens/istio-token").read_text()
            assert token not in (a.root / "agent.log").read_text()
    finally:
        for a in agents:
            await a.stop()
        await plane.stop()
