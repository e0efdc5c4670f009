"""/debug/syncz, /debug/configz, /metrics and pages added by the composition root."""

import aiohttp

from meshplane.xds import resources as R
from tests.support import memsource, stack, xdsclient
from tests.support.wait import wait_for

CDS, EDS = R.TYPE_CDS, R.TYPE_EDS
C0 = "outbound|80||svc-0.ns-0.svc.cluster.local"


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def get_json(url: str) -> object:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        assert r.status == 200
        return await r.json()


async def test_syncz_metrics_and_configz() -> None:
    src = stack.sample_source(services=2, endpoints=2)
    node = xdsclient.make_node(
        xdsclient.sidecar_node_id("app", "ns-0", "10.200.0.1"),
        {"CLUSTER_ID": "cluster2", "ISTIO_VERSION": "1.24.0"},
    )
    async with stack.running(src) as st, xdsclient.XdsClient(st.target, node) as c:
        await c.subscribe(CDS)
        await c.subscribe(EDS, [C0])
        await c.wait_responses(EDS, 1)

        async def synced() -> object:
            (entry,) = await get_json(st.debug_url + "/debug/syncz")  # type: ignore[misc]
            ok = entry.get("endpoint_acked") and entry["endpoint_sent"] == entry["endpoint_acked"]
            return entry if ok and entry["cluster_sent"] == entry["cluster_acked"] else None

        entry = await wait_for(synced, what="cds and eds acked in syncz")
        assert entry["proxy"] == "app.ns-0"
        assert entry["cluster_id"] == "cluster2"
        assert entry["proxy_type"] == "sidecar"
        assert entry["istio_version"] == "1.24.0"
        version = st.ads.current.version  # type: ignore[union-attr]
        eds = entry["xds"]["eds"]
        assert eds["sent_version"] == eds["acked_version"] == version
        assert eds["sent_nonce"] == entry["endpoint_sent"] and eds["last_nack"] is None
        assert "listener_sent" not in entry and "lds" not in entry["xds"]  # never requested

        status, ctype, text = await get(st.debug_url + "/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        assert 'pilot_xds{version="1.24.0"} 1.0' in text
        assert 'pilot_xds_pushes{type="cds"}' in text and 'pilot_xds_pushes{type="eds"}' in text
        assert 'pilot_push_triggers{type="startup"} 1.0' in text
        assert "pilot_xds_send_time_count" in text and "pilot_pushcontext_init_seconds_count 1.0" in text

        configz = await get_json(st.debug_url + "/debug/configz")
        assert configz["version"] == version  # type: ignore[index]
        services = {s["hostname"]: s for s in configz["services"]}  # type: ignore[index]
        assert services["svc-0.ns-0.svc.cluster.local"]["ports"][0] == {
            "name": "http",
            "port": 80,
            "protocol": "HTTP",
        }
        eps = configz["endpoints"]["svc-0.ns-0.svc.cluster.local"]["cluster1"]  # type: ignore[index]
        assert sorted(e["address"] for e in eps) == ["10.0.0.1", "10.0.0.2"]
        assert configz["mesh"]["trust_domain"] == "cluster.local"  # type: ignore[index]


async def test_composition_root_pages_and_unknown_paths() -> None:
    src = memsource.MemorySource()
    st = await stack.start(src, initial_push=False)
    try:
        # pages must be added before start(): build a second debug server the way the root does
        from meshplane.server import debug

        dbg = debug.DebugServer(st.ads, st.metrics)
        dbg.add_json(
            "/debug/clusterz", lambda: [{"id": "cluster1", "secretName": "", "syncStatus": "synced"}]
        )

        async def registryz() -> object:
            return [{"hostname": "a.b.svc.cluster.local"}]

        dbg.add_json("/debug/registryz", registryz)
        port = await dbg.start("127.0.0.1", 0)
        try:
            base = f"http://127.0.0.1:{port}"
            assert await get_json(base + "/debug/clusterz") == [
                {"id": "cluster1", "secretName": "", "syncStatus": "synced"}
            ]
            assert await get_json(base + "/debug/registryz") == [{"hostname": "a.b.svc.cluster.local"}]
            assert await get_json(base + "/debug/syncz") == []
            assert (await get_json(base + "/debug/configz"))["version"] is None  # type: ignore[index]
            assert "/debug/registryz" in await get_json(base + "/debug")  # type: ignore[operator]
            status, _, _ = await get(base + "/debug/nothing")
            assert status == 404
        finally:
            await dbg.stop()
    finally:
        await st.stop()
