"""The agent's xDS proxy between a test xDS client (in Envoy's place) and an istiod-like 15012:
fresh token + cluster ID per upstream stream, upstream refusals passed back, SotW and Delta."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from meshplane.agent import uds, upstream, xdsproxy
from meshplane.runtime import backoff, clock
from meshplane.xds import resources
from tests.support import istiod, labpod, memsource, xdsclient
from tests.support.wait import wait_for

NODE_META = {"NAMESPACE": "sample", "SERVICE_ACCOUNT": "sleep", "CLUSTER_ID": "cluster1"}


@pytest.fixture
async def plane() -> AsyncIterator[istiod.Istiod]:
    src = memsource.MemorySource()
    src.add_service("helloworld", "sample", (("http", 5000),))
    cp = istiod.Istiod(src)
    await cp.start()
    await cp.push("startup")
    try:
        yield cp
    finally:
        await cp.stop()


@pytest.fixture
async def proxy(tmp_path: Path, plane: istiod.Istiod) -> AsyncIterator[tuple[xdsproxy.XdsProxy, Path]]:
    root = labpod.write(
        tmp_path,
        token=plane.reviewer.issue("sample", "sleep"),
        root_pem=plane.mesh.root_pem,
        hosts={"istiod.istio-system.svc": plane.host},
    )
    target = upstream.Upstream(
        address=plane.address,
        cluster_id="cluster1",
        token_path=root / "var/run/secrets/tokens/istio-token",
        root_cert_path=root / "var/run/secrets/istio/root-cert.pem",
        hosts_path=root / "etc/hosts",
    )
    p = xdsproxy.XdsProxy(
        target,
        uds.address(root / "etc/istio/proxy/XDS"),
        clock=clock.SystemClock(),
        retry=lambda: backoff.Backoff(initial=0.05, maximum=0.2),
    )
    await p.start()
    try:
        yield p, root
    finally:
        await p.stop()


def _client(root: Path, delta: bool, sa: str = "sleep") -> xdsclient.XdsClient:
    node = xdsclient.make_node(
        xdsclient.sidecar_node_id("sleep-1", "sample", "127.0.0.9"), {**NODE_META, "SERVICE_ACCOUNT": sa}
    )
    return xdsclient.XdsClient(uds.address(root / "etc/istio/proxy/XDS").grpc_target, node, delta=delta)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_streams_carry_a_fresh_token_and_config_flows(
    plane: istiod.Istiod, proxy: tuple[xdsproxy.XdsProxy, Path], delta: bool
) -> None:
    p, root = proxy
    async with _client(root, delta) as c:
        await c.subscribe(resources.TYPE_CDS)
        await c.wait_resource(resources.TYPE_CDS, "outbound|5000||helloworld.sample.svc.cluster.local")
    first_token = plane.reviewer.calls[-1][0]
    # the kubelet rotates the token: the next Envoy stream opens an upstream stream with the new one
    new_token = plane.reviewer.issue("sample", "sleep")
    labpod.rotate_token(root, new_token)
    async with _client(root, delta) as c:
        await c.subscribe(resources.TYPE_CDS)
        await c.wait_resource(resources.TYPE_CDS, "outbound|5000||helloworld.sample.svc.cluster.local")
    assert plane.reviewer.calls[-1][0] == new_token != first_token
    assert p.upstream_connects == 2


async def test_upstream_refusal_is_passed_to_envoy_and_proxy_keeps_serving(
    plane: istiod.Istiod, proxy: tuple[xdsproxy.XdsProxy, Path]
) -> None:
    _, root = proxy
    # node metadata claims another service account than the token: XDS_AUTH refuses the stream
    async with _client(root, False, sa="admin") as c:
        await c.subscribe(resources.TYPE_CDS)
        error = await c.wait_closed()
    assert error is not None and error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "authorization failed" in (error.details() or "")
    async with _client(root, False) as c:
        await c.subscribe(resources.TYPE_CDS)
        await c.wait_resource(resources.TYPE_CDS, "outbound|5000||helloworld.sample.svc.cluster.local")


async def test_downstream_waits_while_discovery_is_down(
    plane: istiod.Istiod, proxy: tuple[xdsproxy.XdsProxy, Path]
) -> None:
    p, root = proxy
    await plane.stop()
    async with _client(root, False) as c:
        await c.subscribe(resources.TYPE_CDS)
        await wait_for(lambda: p.upstream_failures >= 3, 10, message="upstream retries")
        assert not c.done  # Envoy's stream is held open, not failed
        await plane.start()
        await plane.push("back")
        await c.wait_resource(
            resources.TYPE_CDS, "outbound|5000||helloworld.sample.svc.cluster.local", within=15
        )
