"""Istio's NDS over ADS (SotW and Delta): the NameTable a sidecar with DNS capture subscribes to,
decoded as Istio's agent decodes it, per proxy cluster, and kept current on pushes."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

import pytest

from meshplane.agent import ndsproto
from meshplane.model.ids import ClusterId, Hostname
from meshplane.xds import resources as R
from tests.support import memsource, stack, xdsclient

NDS = R.TYPE_NDS
BOTH = "both.sample.svc.cluster.local"
ONLY2 = "only2.sample.svc.cluster.local"
DB = "db.sample.svc.cluster.local"


def _vips(src: memsource.MemorySource, host: str, vips: dict[str, tuple[str, ...]]) -> None:
    h = Hostname(host)
    src.services[h] = dataclasses.replace(
        src.services[h], cluster_vips=MappingProxyType({ClusterId(c): v for c, v in vips.items()})
    )


def source() -> memsource.MemorySource:
    src = memsource.MemorySource()
    src.add_service("both", "sample")
    _vips(src, BOTH, {"cluster1": ("10.96.0.10",), "cluster2": ("10.97.0.10",)})
    src.add_service("only2", "sample", [("http", 5000)])
    _vips(src, ONLY2, {"cluster2": ("10.97.0.20",)})
    src.add_service("db", "sample", [("tcp-db", 3306)])  # headless: no ClusterIP anywhere
    src.set_endpoints(Hostname(DB), "cluster1", ["10.1.0.5"], port_name="tcp-db", port=3306)
    src.set_endpoints(Hostname(DB), "cluster2", ["10.2.0.5"], port_name="tcp-db", port=3306)
    return src


def client(st: stack.Stack, cluster: str, delta: bool) -> xdsclient.XdsClient:
    node = xdsclient.make_node(
        xdsclient.sidecar_node_id("sleep-1", "sample", "10.1.0.9"),
        {"CLUSTER_ID": cluster, "DNS_CAPTURE": "true", "ISTIO_VERSION": "1.24.0"},
    )
    return xdsclient.XdsClient(st.target, node, delta=delta)


def table(c: xdsclient.XdsClient) -> dict[str, Any]:
    (body,) = c.view(NDS).resources.values()
    nt = ndsproto.NameTable()
    assert body.Unpack(nt)
    return {h: (list(i.ips), i.registry, i.shortname, i.namespace) for h, i in nt.table.items()}


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_name_table_per_proxy_cluster(delta: bool) -> None:
    src = source()
    async with (
        stack.running(src) as st,
        client(st, "cluster1", delta) as c1,
        client(st, "cluster2", delta) as c2,
    ):
        for c in (c1, c2):
            await c.subscribe(NDS)
            await c.wait(lambda c: bool(c.view(NDS).resources), what="name table")
        t1, t2 = table(c1), table(c2)
        # a proxy gets its own cluster's ClusterIP; a service only in cluster2 resolves from cluster1
        assert t1[BOTH] == (["10.96.0.10"], "Kubernetes", "both", "sample")
        assert t2[BOTH][0] == ["10.97.0.10"]
        assert t1[ONLY2] == (["10.97.0.20"], "Kubernetes", "only2", "sample")
        # headless: the endpoints of every cluster on the proxy's network
        assert t1[DB][0] == ["10.1.0.5", "10.2.0.5"]

        # an endpoint change of a headless service is a new table, even on an EDS-only push
        before = len(c1.received)
        src.set_endpoints(Hostname(DB), "cluster2", ["10.2.0.6"], port_name="tcp-db", port=3306)
        await st.push(full=False, eds_hosts=frozenset({DB}))
        await c1.wait(lambda c: len(c.received) > before and table(c)[DB][0] == ["10.1.0.5", "10.2.0.6"])
        assert {r.type_url for r in c1.received[before:]} == {NDS}
        # a new service comes with the next full push
        src.add_service("new", "sample")
        _vips(src, "new.sample.svc.cluster.local", {"cluster1": ("10.96.0.30",)})
        await st.push()
        await c1.wait(lambda c: "new.sample.svc.cluster.local" in table(c), what="new name")
