"""Per-stream behaviour: node validation, the auth hook, isolation between streams."""

from typing import Any

import grpc
import pytest

from meshplane.model import proxy as proxy_mod
from meshplane.server import errors
from meshplane.xds import resources as R
from tests.support import stack, xdsclient

CDS, LDS = R.TYPE_CDS, R.TYPE_LDS
GOOD = xdsclient.sidecar_node_id("good", "ns-0", "10.200.0.1")


@pytest.mark.parametrize("delta", [False, True])
@pytest.mark.parametrize(
    ("node_id", "meta", "needle"),
    [
        ("not-a-node-id", {}, "4 parts"),
        ("gateway~10.0.0.1~p.ns~ns.svc.cluster.local", {}, "invalid node type 'gateway'"),
        (GOOD, {"LABELS": "app=x"}, "LABELS must be a map"),
        ("", {}, "missing node information"),
    ],
)
async def test_bad_node_closes_only_that_stream_with_invalid_argument(
    delta: bool, node_id: str, meta: dict[str, Any], needle: str
) -> None:
    src = stack.sample_source()
    async with stack.running(src) as st:
        good = xdsclient.XdsClient(st.target, xdsclient.make_node(GOOD), delta=delta)
        async with good:
            await good.subscribe(CDS)
            await good.wait_responses(CDS, 1)
            async with xdsclient.XdsClient(st.target, xdsclient.make_node(node_id, meta), delta=delta) as bad:
                await bad.subscribe(CDS)
                err = await bad.wait_closed()
                assert err is not None and err.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert needle in (err.details() or "")
                assert not bad.of_type(CDS)
            # the good stream is unaffected and still receives pushes
            src.add_service("after", "ns-9")
            await st.push()
            await good.wait(lambda c: "outbound|80||after.ns-9.svc.cluster.local" in c.view(CDS).resources)
            assert len(st.ads.connections) == 1


async def test_a_proxy_whose_metadata_names_no_known_pod_gets_its_config() -> None:
    meta = {"NAME": "ghost-7f9", "NAMESPACE": "nowhere", "CLUSTER_ID": "cluster9", "LABELS": {"app": "ghost"}}
    node = xdsclient.make_node(xdsclient.sidecar_node_id("ghost-7f9", "nowhere", "10.250.1.1"), meta)
    async with stack.running(stack.sample_source()) as st, xdsclient.XdsClient(st.target, node) as c:
        await c.subscribe(CDS)
        await c.wait(lambda c: "outbound|80||svc-0.ns-0.svc.cluster.local" in c.view(CDS).resources)
        await c.subscribe(LDS)
        await c.wait(lambda c: bool(c.view(LDS).resources))
        (entry,) = st.ads.syncz()
        assert entry["proxy"] == "ghost-7f9.nowhere" and entry["cluster_id"] == "cluster9"


async def test_auth_hook_runs_before_anything_is_sent_and_can_reject() -> None:
    seen: list[proxy_mod.Proxy] = []

    async def auth(ctx: grpc.aio.ServicerContext[Any, Any], proxy: proxy_mod.Proxy) -> None:
        seen.append(proxy)
        md = dict(ctx.invocation_metadata() or ())
        if md.get("authorization") != "Bearer ok":
            await ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "authentication failure")
        if proxy.namespace == "forbidden":
            raise errors.StreamRejected(grpc.StatusCode.PERMISSION_DENIED, "namespace forbidden")

    async with stack.running(stack.sample_source(), auth=auth) as st:
        async with xdsclient.XdsClient(st.target, xdsclient.make_node(GOOD)) as c:
            await c.subscribe(CDS)
            err = await c.wait_closed()
            assert err is not None and err.code() is grpc.StatusCode.UNAUTHENTICATED and not c.received
        forbidden = xdsclient.make_node(xdsclient.sidecar_node_id("p", "forbidden", "10.0.0.9"))
        async with xdsclient.XdsClient(st.target, forbidden, metadata=(("authorization", "Bearer ok"),)) as c:
            await c.subscribe(CDS)
            err = await c.wait_closed()
            assert err is not None and err.code() is grpc.StatusCode.PERMISSION_DENIED
            assert err.details() == "namespace forbidden"
        async with xdsclient.XdsClient(
            st.target, xdsclient.make_node(GOOD), metadata=(("authorization", "Bearer ok"),)
        ) as c:
            await c.subscribe(CDS)
            await c.wait_responses(CDS, 1)
        assert [p.id for p in seen] == ["good.ns-0", "p.forbidden", "good.ns-0"]


async def test_many_streams_and_clean_shutdown() -> None:
    st = await stack.start(stack.sample_source())
    clients = [
        xdsclient.XdsClient(
            st.target, xdsclient.make_node(xdsclient.sidecar_node_id(f"p{i}", "ns-0", "10.1.0.1"))
        )
        for i in range(20)
    ]
    try:
        for c in clients:
            await c.connect()
            await c.subscribe(CDS)
        for c in clients:
            await c.wait_responses(CDS, 1)
        assert 'pilot_xds{version=""} 20.0' in st.metrics.render().decode()
    finally:
        await st.stop()
    for c in clients:
        err = await c.wait_closed()
        assert err is None or err.code() in (
            grpc.StatusCode.OK,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.CANCELLED,
        )
        await c.close()
