"""Delta (incremental) ADS over a real gRPC server, with the real generators."""

import asyncio

from envoy.service.discovery.v3 import discovery_pb2

from meshplane.model.ids import Hostname
from meshplane.xds import resources as R
from tests.support import stack, xdsclient
from tests.support.wait import wait_for

CDS, EDS, LDS, RDS = R.TYPE_CDS, R.TYPE_EDS, R.TYPE_LDS, R.TYPE_RDS
C0, C1, C2 = (f"outbound|80||svc-{i}.ns-{i}.svc.cluster.local" for i in range(3))
SVC1 = Hostname("svc-1.ns-1.svc.cluster.local")


def client(st: stack.Stack, pod: str = "app", **kw: object) -> xdsclient.XdsClient:
    node = xdsclient.make_node(
        xdsclient.sidecar_node_id(pod, "ns-0", "10.200.0.1"), {"CLUSTER_ID": "cluster1"}
    )
    return xdsclient.XdsClient(st.target, node, delta=True, **kw)  # type: ignore[arg-type]


async def test_handshake_and_acks() -> None:
    async with stack.running(stack.sample_source()) as st, client(st) as c:
        await stack.handshake(c)
        assert [r.type_url for r in c.received] == [CDS, EDS, LDS, RDS]
        assert set(c.view(EDS).resources) == {C0, C1}

        def all_acked() -> bool:
            x = st.ads.syncz()[0]["xds"]
            return all(x[t]["sent_nonce"] and x[t]["sent_nonce"] == x[t]["acked_nonce"] for t in x)

        await wait_for(all_acked, what="every type acked")
        assert st.ads.syncz()[0]["delta"] is True


async def test_full_push_sends_only_changed_resources() -> None:
    src = stack.sample_source()
    async with stack.running(src) as st, client(st) as c:
        await stack.handshake(c)
        before = len(c.received)
        src.add_service("extra", "ns-9")  # a new cluster; the route config changes too
        await st.push()
        await c.wait(lambda c: "outbound|80||extra.ns-9.svc.cluster.local" in c.view(CDS).resources)
        await asyncio.sleep(0.3)
        pushed = {r.type_url: r for r in c.received[before:]}
        assert pushed[CDS].names == ["outbound|80||extra.ns-9.svc.cluster.local"]
        assert EDS not in pushed  # no subscribed endpoints changed, and no cluster warms
        assert RDS in pushed and pushed[RDS].names == ["80"]
        # a push with nothing changed sends nothing at all
        before = len(c.received)
        await st.push()
        await asyncio.sleep(0.3)
        assert c.received[before:] == []


async def test_removed_service_is_sent_as_removed_resources() -> None:
    src = stack.sample_source()
    async with stack.running(src) as st, client(st) as c:
        await stack.handshake(c)
        src.remove_service(Hostname("svc-1.ns-1.svc.cluster.local"))
        await st.push()
        await c.wait(lambda c: C1 not in c.view(CDS).resources)
        cds = c.of_type(CDS)[-1]
        assert cds.removed == [C1] and cds.names == []
        await c.wait(lambda c: C1 not in c.view(EDS).resources)
        assert c.of_type(EDS)[-1].removed == [C1]


async def test_eds_only_push_sends_the_changed_cluster_only_and_no_cds() -> None:
    src = stack.sample_source()
    async with stack.running(src) as st, client(st) as c:
        await stack.handshake(c)
        before = len(c.received)
        src.set_endpoints(SVC1, "cluster1", ["10.77.0.1"])
        await st.push(full=False, eds_hosts=frozenset({SVC1}))
        await c.wait(lambda c: len(c.received) > before)
        await asyncio.sleep(0.3)
        assert [(r.type_url, r.names, r.removed) for r in c.received[before:]] == [(EDS, [C1], [])]


async def test_subscribe_unsubscribe_and_unknown_names() -> None:
    async with stack.running(stack.sample_source()) as st, client(st) as c:
        await c.subscribe(EDS, [C0])
        await c.wait(lambda c: C0 in c.view(EDS).resources)
        await c.subscribe(EDS, [C1, "outbound|80||nope.ns.svc.cluster.local"])
        await c.wait(lambda c: C1 in c.view(EDS).resources)
        last = c.of_type(EDS)[-1]
        assert last.names == [C1]  # only the new one, not C0 again
        assert last.removed == ["outbound|80||nope.ns.svc.cluster.local"]  # "does not exist"
        await c.unsubscribe(EDS, [C0])
        await wait_for(lambda: C0 not in st.ads.connections[0].states[EDS].names, what="unsubscribe seen")
        n = len(c.of_type(EDS))
        await st.push(full=False, eds_hosts=frozenset({"svc-0.ns-0.svc.cluster.local"}))
        await asyncio.sleep(0.3)
        assert len(c.of_type(EDS)) == n  # C0 changed but is no longer subscribed
        st_eds = st.ads.syncz()[0]["xds"]["eds"]
        assert st_eds["subscribed"] == 2 and st_eds["resources"] == 1


async def test_reconnect_with_initial_resource_versions_skips_what_the_proxy_has() -> None:
    async with stack.running(stack.sample_source()) as st:
        async with client(st) as c:
            await c.subscribe(CDS)
            await c.wait(lambda c: C2 in c.view(CDS).resources)
            versions = dict(c.view(CDS).versions)
        async with client(st, pod="app") as c2:
            stale = dict(versions)
            stale[C1] = "old-version"
            await c2.send(discovery_pb2.DeltaDiscoveryRequest(type_url=CDS, initial_resource_versions=stale))
            (r,) = await c2.wait_responses(CDS, 1)
            assert r.names == [C1]  # only the one whose version differs


async def test_nack_recorded_and_next_change_still_pushed() -> None:
    src = stack.sample_source()
    async with stack.running(src) as st, client(st, pod="nacker") as c:
        await stack.handshake(c)
        c.nack_next(RDS, "route: bad")
        src.add_service("extra", "ns-9")
        await st.push()
        await c.wait(lambda c: bool(c.view(RDS).nacked))
        nack = await wait_for(lambda: st.ads.syncz()[0]["xds"]["rds"]["last_nack"], what="nack in syncz")
        assert nack["message"] == "route: bad" and nack["nonce"] == c.view(RDS).nacked[0]
        assert 'pilot_total_xds_rejects{type="rds"} 1.0' in st.metrics.render().decode()
        src.add_service("later", "ns-9")
        await st.push()
        await c.wait(lambda c: "outbound|80||later.ns-9.svc.cluster.local" in c.view(CDS).resources)
        await c.wait(lambda c: len(c.of_type(RDS)) >= 3)
