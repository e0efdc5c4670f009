import pytest

from meshplane.ctl import debugclient, errors, proxystatus


@pytest.mark.parametrize(
    ("sent", "acked", "status"),
    [
        ("", "", "NOT SENT"),
        ("n1", "n1", "SYNCED"),
        ("n2", "", "STALE (Never Acknowledged)"),
        ("n2", "n1", "STALE"),
    ],
)
def test_xds_status_as_istioctl(sent: str, acked: str, status: str) -> None:
    assert proxystatus.xds_status(sent, acked) == status


SYNCZ = {
    "istiod-a": [
        {
            "proxy": "web-1.app",
            "cluster_id": "cluster2",
            "istio_version": "1.24.0",
            "cluster_sent": "a",
            "cluster_acked": "a",
            "listener_sent": "b",
            "listener_acked": "",
            "endpoint_sent": "c",
            "endpoint_acked": "x",
        },
        {"proxy": "db-0.app", "cluster_id": "cluster1", "proxy_version": "1.30.1"},
    ],
    "istiod-b": [{"proxy": "api-2.app", "cluster_id": "cluster1", "istio_version": "1.24.0"}],
}


def test_rows_sorted_by_cluster_then_proxy_and_filtered() -> None:
    rs = proxystatus.rows(SYNCZ)
    assert [(r.cluster, r.name, r.istiod) for r in rs] == [
        ("cluster1", "api-2.app", "istiod-b"),
        ("cluster1", "db-0.app", "istiod-a"),
        ("cluster2", "web-1.app", "istiod-a"),
    ]
    web = rs[2]
    assert (web.cds, web.lds, web.eds, web.rds, web.ecds) == (
        "SYNCED",
        "STALE (Never Acknowledged)",
        "STALE",
        "NOT SENT",
        "NOT SENT",
    )
    assert rs[1].version == "1.30.1*"  # no Istio version: the proxy version, starred, as istioctl does
    assert [r.name for r in proxystatus.rows(SYNCZ, "web")] == ["web-1.app"]


def test_table_is_aligned_like_go_tabwriter() -> None:
    rs = proxystatus.rows({"i": [{"proxy": "p.ns", "cluster_id": "c1", "istio_version": "1.24"}]})
    head = "NAME     CLUSTER     CDS          LDS          EDS          RDS          ECDS         ISTIOD     "
    row = "p.ns     c1          NOT SENT     NOT SENT     NOT SENT     NOT SENT     NOT SENT     i          "
    assert proxystatus.table(rs) == f"{head}VERSION\n{row}1.24\n"


@pytest.mark.parametrize("url", ["localhost:15014", "ftp://x", "http://"])
def test_bad_urls_are_rejected(url: str) -> None:
    with pytest.raises(errors.SyncStatusError, match="want http://HOST:PORT"):
        debugclient.check_url(url)


async def test_unreachable_or_bad_servers_are_reported_per_server() -> None:
    from aiohttp import web

    async def syncz(_: web.Request) -> web.Response:
        return web.Response(text='{"not": "a list"}')

    app = web.Application()
    app.router.add_get("/debug/syncz", syncz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        statuses, problems = await debugclient.collect(
            [("bad", f"http://127.0.0.1:{port}"), ("down", "http://127.0.0.1:9")], "/debug/syncz", within=5
        )
    finally:
        await runner.cleanup()
    assert statuses == {}
    assert any("not a JSON list" in p for p in problems) and any("127.0.0.1:9" in p for p in problems)
