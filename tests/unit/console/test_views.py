"""console.views and layout: the graph from the registry snapshot, ADS streams and scraped traffic."""

from __future__ import annotations

import pytest

from meshplane.console import layout, render, scrape, views
from meshplane.ctl import proxystatus
from meshplane.server import connection
from tests.support import meshdata

HOST = "helloworld.sample.svc.cluster.local"
CLUSTER = f"outbound|5000||{HOST}"


class _Stream:
    async def write(self, data: bytes) -> None:
        raise AssertionError("not written in these tests")


def conn(pod: str, ip: str, cluster: str, labels: dict[str, str]) -> connection.Connection:
    return connection.Connection(
        meshdata.proxy(ip, cluster, pod=pod, labels=labels), False, "peer", _Stream(), 0.0
    )


def state() -> tuple[views.State, list[connection.Connection]]:
    v1 = meshdata.ep(
        "198.18.1.5", "cluster1", workload="helloworld-v1-1", labels={"app": "helloworld", "version": "v1"}
    )
    v2 = meshdata.ep(
        "198.18.2.5", "cluster2", workload="helloworld-v2-1", labels={"app": "helloworld", "version": "v2"}
    )
    ctx = meshdata.ctx([meshdata.svc()], {HOST: meshdata.shards(v1, v2)})
    conns = [
        conn("sleep-a", "198.18.1.9", "cluster1", {"app": "sleep"}),
        conn("sleep-b", "198.18.2.9", "cluster2", {"app": "sleep"}),
    ]
    return views.State(connections=lambda: conns, push_context=lambda: ctx, propagation=lambda: {}), conns


def host(address: str, requests: int, rps: float | None, eps: float | None = 0.0) -> scrape.HostTraffic:
    return scrape.HostTraffic(CLUSTER, address, 5000, requests, rps, eps, 4.0 if rps else None, True)


def test_graph_edges_come_only_from_scraped_envoy_counters() -> None:
    st, conns = state()
    traffic = scrape.Traffic(
        at=1.0,
        by_proxy={
            conns[0].proxy.id: [host("198.18.1.5", 10, 0.5), host("198.18.2.5", 12, 0.25, 0.05)],
            conns[1].proxy.id: [host("198.18.2.5", 3, None, None)],  # one sample so far: no rate
        },
    )
    g = views.graph(st, traffic)
    assert g["clusters"] == ["cluster1", "cluster2"]
    ids = {n["id"] for n in g["nodes"]}
    assert {f"svc/{HOST}", "cluster1/sample/helloworld-v1", "cluster2/sample/helloworld-v2",
            "cluster1/sample/sleep", "cluster2/sample/sleep"} <= ids  # fmt: skip
    edges = {(e["source"], e["target"]): e for e in g["edges"]}
    local = edges[("cluster1/sample/sleep", "cluster1/sample/helloworld-v1")]
    cross = edges[("cluster1/sample/sleep", "cluster2/sample/helloworld-v2")]
    unrated = edges[("cluster2/sample/sleep", "cluster2/sample/helloworld-v2")]
    assert not local["cross_cluster"] and cross["cross_cluster"]
    assert cross["rps"] == 0.25 and cross["error_rate"] == pytest.approx(0.2) and cross["mtls"]
    assert unrated["rps"] is None and unrated["error_rate"] is None and unrated["requests"] == 3
    # no traffic scraped: no edges at all
    assert views.graph(st, scrape.Traffic())["edges"] == []

    svg = layout.svg(g)
    assert 'class="edge cross errors"' in svg and 'data-cross-cluster="true"' in svg
    assert "0.25 rps · 20.0% err · p99 4ms" in svg
    page = render.graph(g)
    assert "Where these numbers come from" in page and "rq_error" in page


def test_sync_status_matches_proxy_status() -> None:
    for sent, acked in (("", ""), ("n1", "n1"), ("n2", "n1"), ("n1", "")):
        assert views.sync_status(sent, acked) == proxystatus.xds_status(sent, acked)


def test_pages_escape_what_they_show() -> None:
    c = {"objects": [{"kind": "VirtualService", "namespace": "x", "name": "<b>vs</b>", "valid": False,
                      "message": "VirtualService x/<b>vs</b>: spec.hosts[0]: <script>"}],
         "source": "test"}  # fmt: skip
    html = render.config(c)
    assert "<script>" not in html and "&lt;script&gt;" in html and "invalid" in html


def test_services_list_endpoints_per_cluster_and_the_virtual_services_naming_them() -> None:
    from meshplane.networking import config as net_config

    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
          "metadata": {"name": "hw", "namespace": "sample"},
          "spec": {"hosts": ["*.sample.svc.cluster.local"], "gateways": ["mesh"],
                   "http": [{"route": [{"destination": {"host": HOST}}]}]}}  # fmt: skip
    dr = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
          "metadata": {"name": "hw", "namespace": "sample"},
          "spec": {"host": HOST, "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}}  # fmt: skip
    other = {**dr, "metadata": {"name": "other", "namespace": "sample"}, "spec": {"host": "other.sample"}}
    networking, problems = net_config.build([vs, dr, other])
    assert problems == []
    v1 = meshdata.ep(
        "198.18.1.5", "cluster1", workload="helloworld-v1-1", labels={"app": "helloworld", "version": "v1"}
    )
    ctx = meshdata.ctx([meshdata.svc()], {HOST: meshdata.shards(v1)}, networking=networking)
    st = views.State(connections=lambda: [], push_context=lambda: ctx, propagation=lambda: {})
    (svc,) = views.services(st)["services"]
    assert svc["virtual_services"] == ["sample/hw"]
    assert svc["destination_rules"] == ["sample/hw (v1)"]  # not the rule for another host
    assert "DestinationRules: sample/hw (v1)" in render.services(views.services(st))
    assert svc["endpoints"] == {
        "cluster1": [{"address": "198.18.1.5", "pod": "helloworld-v1-1", "locality": "", "health": "HEALTHY",
                      "network": "", "workload": "cluster1/sample/helloworld-v1"}]
    }  # fmt: skip
