"""State of the World ADS over a real gRPC server, with the real generators."""

import asyncio

from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2

from meshplane.model.ids import Hostname
from meshplane.xds import resources as R
from tests.support import stack, xdsclient
from tests.support.wait import wait_for

CDS, EDS, LDS, RDS = R.TYPE_CDS, R.TYPE_EDS, R.TYPE_LDS, R.TYPE_RDS
SVC0 = "svc-0.ns-0.svc.cluster.local"
SVC1 = "svc-1.ns-1.svc.cluster.local"
C0, C1, C2 = (f"outbound|80||svc-{i}.ns-{i}.svc.cluster.local" for i in range(3))


def client(st: stack.Stack, pod: str = "app", delta: bool = False, **kw: object) -> xdsclient.XdsClient:
    node = xdsclient.make_node(
        xdsclient.sidecar_node_id(pod, "ns-0", "10.200.0.1"),
        {"CLUSTER_ID": "cluster1", "ISTIO_VERSION": "1.24.0"},
    )
    return xdsclient.XdsClient(st.target, node, delta=delta, **kw)  # type: ignore[arg-type]


def addresses(a: object) -> list[str]:
    cla = endpoint_pb2.ClusterLoadAssignment()
    a.Unpack(cla)  # type: ignore[attr-defined]
    return sorted(e.endpoint.address.socket_address.address for g in cla.endpoints for e in g.lb_endpoints)


async def test_handshake_all_types_acked_in_order() -> None:
    async with stack.running(stack.sample_source()) as st, client(st) as c:
        await stack.handshake(c)
        assert set(c.view(CDS).resources) >= {C0, C1, C2}
        assert set(c.view(EDS).resources) == {C0, C1}  # only what was subscribed
        assert [r.type_url for r in c.received] == [CDS, EDS, LDS, RDS]
        version = st.ads.current.version  # type: ignore[union-attr]
        assert all(r.version == version for r in c.received)
        assert len({r.nonce for r in c.received}) == 4
        (entry,) = st.ads.syncz()
        for t in ("cds", "eds", "lds", "rds"):
            await _acked(st, t)
        assert entry["proxy"] == "app.ns-0" and entry["istio_version"] == "1.24.0"


async def _acked(st: stack.Stack, short: str) -> None:
    from tests.support.wait import wait_for

    def ok() -> bool:
        (e,) = st.ads.syncz()
        x = e["xds"][short]
        return bool(x["sent_nonce"]) and x["sent_nonce"] == x["acked_nonce"]

    await wait_for(ok, what=f"{short} acked")


async def test_full_push_sends_every_type_in_envoys_order_and_eds_keeps_the_requested_set() -> None:
    src = stack.sample_source()
    async with stack.running(src) as st, client(st) as c:
        await stack.handshake(c)
        before = len(c.received)
        src.add_service("extra", "ns-9")
        await st.push()
        await c.wait(lambda c: len(c.received) >= before + 4)
        pushed = c.received[before:]
        assert [r.type_url for r in pushed] == [CDS, EDS, LDS, RDS]
        assert "outbound|80||extra.ns-9.svc.cluster.local" in c.view(CDS).resources
        assert sorted(pushed[1].names) == sorted([C0, C1])  # SotW EDS: the whole subscribed set, no more


async def test_eds_only_push_sends_only_the_affected_subscribed_clusters_and_no_cds() -> None:
    src = stack.sample_source()
    async with stack.running(src) as st, client(st) as c:
        await stack.handshake(c)
        before = len(c.received)
        src.set_endpoints(Hostname(SVC1), "cluster1", ["10.77.0.1"])
        src.set_endpoints(
            Hostname("svc-2.ns-2.svc.cluster.local"), "cluster1", ["10.77.0.2"]
        )  # not subscribed
        await st.push(full=False, eds_hosts=frozenset({SVC1, "svc-2.ns-2.svc.cluster.local"}))
        await c.wait(lambda c: addresses(c.view(EDS).resources[C1]) == ["10.77.0.1"])
        await asyncio.sleep(0.3)  # give any wrong extra response time to arrive
        pushed = c.received[before:]
        assert [(r.type_url, r.names) for r in pushed] == [(EDS, [C1])]


async def test_nack_is_logged_counted_in_syncz_and_the_next_change_still_arrives(caplog) -> None:  # type: ignore[no-untyped-def]
    src = stack.sample_source()
    async with stack.running(src) as st, client(st, pod="nacker") as c:
        await stack.handshake(c)
        c.nack_next(CDS, "cluster outbound|80||extra: bad thing")
        src.add_service("extra", "ns-9")
        await st.push()
        await c.wait(lambda c: bool(c.view(CDS).nacked))
        nacked_nonce = c.view(CDS).nacked[0]
        from tests.support.wait import wait_for

        entry = await wait_for(lambda: st.ads.syncz()[0]["xds"]["cds"]["last_nack"], what="nack in syncz")
        assert entry["nonce"] == nacked_nonce and "bad thing" in entry["message"]
        assert entry["version"] == st.ads.current.version  # type: ignore[union-attr]
        line = next(r for r in caplog.records if "NACK" in r.getMessage())
        assert all(x in line.getMessage() for x in ("nacker.ns-0", "type=cds", nacked_nonce, "bad thing"))
        text = st.metrics.render().decode()
        assert 'pilot_total_xds_rejects{type="cds"} 1.0' in text
        assert 'pilot_xds_cds_reject{err="INVALID_ARGUMENT",node="nacker.ns-0"} 1.0' in text
        # the proxy keeps its last good config, and the next change is pushed to it anyway
        assert "outbound|80||extra.ns-9.svc.cluster.local" not in c.view(CDS).resources
        src.add_service("later", "ns-9")
        await st.push()
        await c.wait(lambda c: "outbound|80||later.ns-9.svc.cluster.local" in c.view(CDS).resources)


async def test_stale_nonce_is_ignored() -> None:
    async with stack.running(stack.sample_source()) as st, client(st, auto_ack=False) as c:
        await c.subscribe(EDS, [C0])
        (first,) = await c.wait_responses(EDS, 1)
        await c.ack(EDS)
        await st.push()
        await c.wait_responses(EDS, 2)
        stale = discovery_pb2.DiscoveryRequest(
            type_url=EDS, resource_names=[C0, C1], response_nonce=first.nonce
        )
        await c.send(stale)
        # once the server has counted the stale nonce it has decided: nothing is sent for it
        await wait_for(
            lambda: 'pilot_xds_expired_nonce{type="eds"} 1.0' in st.metrics.render().decode(),
            what="stale nonce counted",
        )
        assert len(c.of_type(EDS)) == 2  # no answer to the stale request
        # the same names with the current nonce are answered
        await c.send(
            discovery_pb2.DiscoveryRequest(
                type_url=EDS, resource_names=[C0, C1], response_nonce=c.view(EDS).last_nonce
            )
        )
        (*_, third) = await c.wait_responses(EDS, 3)
        assert sorted(third.names) == [C0, C1]


async def test_unsubscribed_clusters_are_no_longer_sent() -> None:
    async with stack.running(stack.sample_source()) as st, client(st) as c:
        await c.subscribe(EDS, [C0, C1])
        await c.wait_responses(EDS, 1)
        await c.unsubscribe(EDS, [C1])
        conn = st.ads.connections[0]
        await wait_for(lambda: conn.states[EDS].names == frozenset({C0}), what="unsubscribe seen")
        n = len(c.of_type(EDS))
        await st.push()
        await c.wait_responses(EDS, n + 1)
        assert c.of_type(EDS)[-1].names == [C0]
        await c.unsubscribe(EDS, [C0])  # nothing left: unsubscribed from EDS entirely
        await wait_for(lambda: "eds" not in st.ads.syncz()[0]["xds"], what="EDS unsubscribed")
        n = len(c.of_type(EDS))
        await st.push()
        await asyncio.sleep(0.3)
        assert len(c.of_type(EDS)) == n
        assert "eds" not in st.ads.syncz()[0]["xds"]


async def test_a_client_that_asks_for_sds_gets_nothing_and_keeps_its_stream() -> None:
    async with stack.running(stack.sample_source()) as st, client(st) as c:
        await c.send(discovery_pb2.DiscoveryRequest(type_url=R.TYPE_SDS, resource_names=["default"]))
        await c.subscribe(CDS)
        await c.wait_responses(CDS, 1)
        assert not c.of_type(R.TYPE_SDS) and c.error is None


async def test_response_is_larger_than_grpc_default_limit() -> None:
    src = stack.sample_source(services=12000, endpoints=1)
    async with stack.running(src) as st, client(st) as c:
        await c.subscribe(CDS)
        await c.wait(lambda c: len(c.view(CDS).resources) >= 12000, within=60)
        assert c.error is None
        assert max(len(r.names) for r in c.of_type(CDS)) >= 12000
        # more than gRPC's 4 MiB default message limit went through in one response
        assert st.metrics.config_size.labels(type="cds")._sum.get() > 4 * 1024 * 1024


async def test_eds_only_push_that_moves_a_proxys_own_ip_into_a_service_gives_it_cds_and_lds() -> None:
    src = stack.sample_source()
    async with stack.running(src) as st, client(st, pod="other") as other:
        member_node = xdsclient.make_node(
            xdsclient.sidecar_node_id("member", "ns-1", "10.200.0.9"), {"CLUSTER_ID": "cluster1"}
        )
        async with xdsclient.XdsClient(st.target, member_node) as member:
            for c in (other, member):
                await stack.handshake(c)
            assert not any(n.startswith("inbound") for n in member.view(CDS).resources)
            before_o, before_m = len(other.received), len(member.received)
            src.set_endpoints(Hostname(SVC1), "cluster1", ["10.1.0.1", "10.200.0.9"])
            await st.push(full=False, eds_hosts=frozenset({SVC1}))
            await member.wait(lambda c: any(n.startswith("inbound") for n in c.view(CDS).resources))
            await member.wait(lambda c: LDS in {r.type_url for r in c.received[before_m:]})
            await asyncio.sleep(0.3)
            assert [r.type_url for r in member.received[before_m:]] == [CDS, EDS, LDS, RDS]
            assert [(r.type_url, r.names) for r in other.received[before_o:]] == [(EDS, [C1])]
