"""The push fan-out of the ADS server without a network: coalescing, isolation of slow streams."""

import asyncio
from typing import Any

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from meshplane.model.ids import ClusterId
from meshplane.push import context, metrics
from meshplane.server import ads
from meshplane.xds import generator
from meshplane.xds import resources as R
from tests.support import fakegrpc, memsource, xdsclient

FULL = context.PushRequest(full=True, reasons=frozenset({"test"}), start=1.0)


def server(**kw: Any) -> tuple[ads.AdsServer, memsource.MemorySource, metrics.Metrics]:
    src = memsource.MemorySource()
    memsource.populate(src, 5, 2)
    m = metrics.Metrics()
    return ads.AdsServer(generator.Generator(), metrics=m, cluster_id=ClusterId("c1"), **kw), src, m


def open_stream(s: ads.AdsServer, pod: str) -> tuple[fakegrpc.FakeContext, asyncio.Task[None]]:
    ctx = fakegrpc.FakeContext()
    node = xdsclient.make_node(xdsclient.sidecar_node_id(pod, "ns-0", "10.0.0.1"))
    ctx.feed(discovery_pb2.DiscoveryRequest(type_url=R.TYPE_CDS, node=node))
    return ctx, asyncio.create_task(s.stream_aggregated_resources(None, ctx))


def versions(ctx: fakegrpc.FakeContext) -> list[str]:
    return [discovery_pb2.DiscoveryResponse.FromString(b).version_info for b in ctx.written]


async def ack_last(ctx: fakegrpc.FakeContext) -> None:
    last = discovery_pb2.DiscoveryResponse.FromString(ctx.written[-1])
    ctx.feed(discovery_pb2.DiscoveryRequest(type_url=R.TYPE_CDS, response_nonce=last.nonce))


async def test_a_busy_connection_gets_later_pushes_merged_into_one() -> None:
    s, src, _ = server()
    s.push(src.snapshot("v1"), FULL)
    ctx, task = open_stream(s, "a")
    await ctx.wait_written(1)
    await ack_last(ctx)
    ctx.gate.clear()  # the proxy stops reading: the write of push v2 blocks
    for v in ("v2", "v3", "v4", "v5"):
        s.push(src.snapshot(v), FULL)
        await asyncio.sleep(0.05)
    ctx.gate.set()
    await ctx.wait_written(3)
    await asyncio.sleep(0.2)
    assert versions(ctx) == ["v1", "v2", "v5"]  # v3..v5 coalesced into one push of the newest
    ctx.end()
    await asyncio.wait_for(task, 5)


async def test_a_stalled_stream_does_not_delay_others_and_times_out_alone() -> None:
    s, src, m = server(push_concurrency=2, send_timeout=0.5)
    s.push(src.snapshot("v1"), FULL)
    stuck, stuck_task = open_stream(s, "stuck")
    live, live_task = open_stream(s, "live")
    await stuck.wait_written(1)
    await live.wait_written(1)
    await ack_last(live)
    await ack_last(stuck)
    stuck.gate.clear()
    for i, v in enumerate(("v2", "v3", "v4"), start=2):
        s.push(src.snapshot(v), FULL)
        await live.wait_written(i, within=0.4)  # each push reaches the live proxy before the timeout
        await ack_last(live)
    assert versions(live) == ["v1", "v2", "v3", "v4"]
    with pytest.raises(grpc.aio.AbortError):
        await asyncio.wait_for(stuck_task, 5)
    assert stuck.aborted is not None and stuck.aborted[0] is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "timeout writing CDS" in stuck.aborted[1]
    assert "pilot_xds_write_timeout 1.0" in m.render().decode()
    assert [c.proxy.id for c in s.connections] == ["live.ns-0"]
    live.end()
    await asyncio.wait_for(live_task, 5)


async def test_streams_wait_for_the_first_push_context() -> None:
    s, src, _ = server()
    ctx, task = open_stream(s, "early")
    await asyncio.sleep(0.1)
    assert ctx.written == []
    s.push(src.snapshot("v1"), FULL)
    await ctx.wait_written(1)
    assert versions(ctx) == ["v1"]
    ctx.end()
    await asyncio.wait_for(task, 5)


async def test_generation_runs_off_the_event_loop() -> None:
    import threading

    threads: set[str] = set()

    class Spy(generator.Generator):
        def generate(self, *args: Any, **kw: Any) -> R.Generated:
            threads.add(threading.current_thread().name)
            return super().generate(*args, **kw)

    src = memsource.MemorySource()
    memsource.populate(src, 5, 2)
    s = ads.AdsServer(Spy(), metrics=metrics.Metrics(), cluster_id=ClusterId("c1"))
    s.push(src.snapshot("v1"), FULL)
    ctx, task = open_stream(s, "a")
    await ctx.wait_written(1)
    assert threads and all(t.startswith("xds-gen") for t in threads)
    ctx.end()
    await asyncio.wait_for(task, 5)


_req = st.tuples(
    st.sampled_from(
        [R.TYPE_CDS, R.TYPE_EDS, R.TYPE_LDS, R.TYPE_RDS, R.TYPE_SDS, "type.googleapis.com/x.Y", ""]
    ),
    st.lists(
        st.sampled_from(["outbound|80||svc-0.ns-0.svc.cluster.local", "15001", "*", "junk|x", ""]), max_size=3
    ),
    st.sampled_from(["", "stale", "last"]),
    st.booleans(),
)


@settings(max_examples=25, deadline=None)
@given(reqs=st.lists(_req, max_size=8), delta=st.booleans())
def test_any_request_stream_is_served_without_crashing(reqs, delta) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        s, src, _ = server()
        s.push(src.snapshot("v1"), FULL)
        ctx = fakegrpc.FakeContext()
        node = xdsclient.make_node(xdsclient.sidecar_node_id("fuzz", "ns-0", "10.0.0.1"))
        last = ""
        for i, (type_url, names, nonce, nack) in enumerate(reqs):
            n = last if nonce == "last" else nonce
            if delta:
                req = discovery_pb2.DeltaDiscoveryRequest(
                    type_url=type_url, resource_names_subscribe=names, response_nonce=n
                )
            else:
                req = discovery_pb2.DiscoveryRequest(
                    type_url=type_url, resource_names=names, response_nonce=n
                )
            if nack:
                req.error_detail.message = "no"
            if i == 0:
                req.node.CopyFrom(node)
            ctx.feed(req)
        ctx.end()
        handler = s.delta_aggregated_resources if delta else s.stream_aggregated_resources
        if reqs:
            await asyncio.wait_for(handler(None, ctx), 10)
            assert ctx.aborted is None
            parse = discovery_pb2.DeltaDiscoveryResponse if delta else discovery_pb2.DiscoveryResponse
            for data in ctx.written:
                assert parse.FromString(data).type_url in R.GENERATED_TYPES
        await s.close()

    asyncio.run(scenario())
