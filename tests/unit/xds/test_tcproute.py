"""VirtualService `tcp` routes for sidecars: the VIP_PORT listener of a TCP service port sends its
connections where the route says, and Envoy accepts it."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshplane.networking import config as networking_config
from meshplane.xds import generator, resources
from tests.support import envoyproc
from tests.support import meshdata as md
from tests.unit.xds.test_envoy_validate import _bootstrap, _decode

DB = md.svc("db", ports=(("tcp-db", 5432),), vips={"cluster1": ["10.96.0.20"]})
HOST = "db.sample.svc.cluster.local"
CAPTURED = {"INTERCEPTION_MODE": "REDIRECT"}


def _docs(tcp: list[dict[str, Any]], namespace: str = "sample", **spec: Any) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "db", "namespace": "sample"},
            "spec": {
                "host": "db",
                "subsets": [{"name": "a", "labels": {"v": "a"}}, {"name": "b", "labels": {"v": "b"}}],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "db", "namespace": namespace},
            "spec": {"hosts": [HOST], "tcp": tcp, **spec},
        },
    ]


def _listeners(docs: list[dict[str, Any]], proxy=None) -> dict[str, listener_pb2.Listener]:  # type: ignore[no-untyped-def]
    cfg, problems = networking_config.build(docs)
    assert problems == []
    c = md.ctx([DB], networking=cfg)
    out = _decode(
        generator.Generator().generate(resources.TYPE_LDS, proxy or md.proxy(metadata=CAPTURED), c, None),
        listener_pb2.Listener,
    )
    return {x.name: x for x in out}


def _proxy_of(listener: listener_pb2.Listener) -> tcp_proxy_pb2.TcpProxy:
    (chain,) = listener.filter_chains
    cfg = tcp_proxy_pb2.TcpProxy()
    assert chain.filters[0].typed_config.Unpack(cfg)
    return cfg


def test_weighted_tcp_route_to_subsets() -> None:
    docs = _docs(
        [
            {
                "route": [
                    {"destination": {"host": "db", "subset": "a"}, "weight": 80},
                    {"destination": {"host": "db", "subset": "b"}, "weight": 20},
                ]
            }
        ]
    )
    tp = _proxy_of(_listeners(docs)["10.96.0.20_5432"])
    assert [(c.name, c.weight) for c in tp.weighted_clusters.clusters] == [
        (f"outbound|5432|a|{HOST}", 80),
        (f"outbound|5432|b|{HOST}", 20),
    ]


def test_first_applying_tcp_route_wins_and_others_fall_back() -> None:
    docs = _docs(
        [
            {"match": [{"port": 9999}], "route": [{"destination": {"host": "db", "subset": "b"}}]},
            {"match": [{"port": 5432}], "route": [{"destination": {"host": "db", "subset": "a"}}]},
        ]
    )
    assert _proxy_of(_listeners(docs)["10.96.0.20_5432"]).cluster == f"outbound|5432|a|{HOST}"
    # no VirtualService visible to this namespace: the service's own cluster
    private = _docs([{"route": [{"destination": {"host": "db", "subset": "a"}}]}], exportTo=["."])
    other = md.proxy(namespace="other", metadata=CAPTURED)
    assert _proxy_of(_listeners(private, other)["10.96.0.20_5432"]).cluster == f"outbound|5432||{HOST}"
    assert _proxy_of(_listeners(private)["10.96.0.20_5432"]).cluster == f"outbound|5432|a|{HOST}"


@pytest.mark.envoy
def test_envoy_accepts_the_routed_listener() -> None:
    docs = _docs(
        [
            {
                "route": [
                    {"destination": {"host": "db", "subset": "a"}, "weight": 50},
                    {"destination": {"host": "db", "subset": "b"}, "weight": 50},
                ]
            }
        ]
    )
    cfg, _ = networking_config.build(docs)
    c = md.ctx([DB], networking=cfg)
    g = generator.Generator()
    p = md.proxy(metadata=CAPTURED)
    clusters = _decode(g.generate(resources.TYPE_CDS, p, c, None), cluster_pb2.Cluster)
    listeners = _decode(g.generate(resources.TYPE_LDS, p, c, None), listener_pb2.Listener)
    result = envoyproc.validate(_bootstrap(clusters, [x for x in listeners if x.name == "10.96.0.20_5432"]))
    assert result.returncode == 0, result.stdout + result.stderr
