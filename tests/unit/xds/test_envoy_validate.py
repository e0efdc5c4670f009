"""Envoy itself checks the generated config: a static bootstrap embedding generated clusters,
listeners and route configurations must pass `envoy --mode validate`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from google.protobuf import json_format, message

from meshplane.agent import bootstrap
from meshplane.model import mesh
from meshplane.model import proxy as proxy_model
from meshplane.networking import config as networking_config
from meshplane.xds import filters, generator, protos, resources
from tests.support import envoyproc
from tests.support import meshdata as md

pytestmark = pytest.mark.envoy
DATA = Path(__file__).parent / "data"


def _dict(msg: message.Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def _decode(g: resources.Generated, cls):  # type: ignore[no-untyped-def]
    out = []
    for r in g.resources:
        m = cls()
        assert r.body.Unpack(m)
        out.append(m)
    return out


def _route_holder(rc: route_pb2.RouteConfiguration, i: int) -> listener_pb2.Listener:
    """A listener carrying a route configuration inline, so Envoy validates it statically."""
    return listener_pb2.Listener(
        name=f"routes-{i}",
        address=protos.socket_address("127.0.0.1", 20000 + i),
        filter_chains=[listener_components_pb2.FilterChain(filters=[filters.hcm(f"r{i}", route_config=rc)])],
    )


def _bootstrap(clusters: list[cluster_pb2.Cluster], listeners: list[listener_pb2.Listener]) -> dict[str, Any]:
    opts = bootstrap.BootstrapOptions(
        proxy_type=proxy_model.ProxyType.SIDECAR,
        pod_name="validate",
        namespace="sample",
        ips=("127.0.1.5",),
        discovery_address="127.0.0.1:15010",
        admin_address="127.0.0.1:0",
        sds_socket="/tmp/meshplane-validate-sds.sock",
    )
    doc = bootstrap.build(opts)
    doc["static_resources"]["clusters"] += [_dict(c) for c in clusters]
    doc["static_resources"]["listeners"] = [_dict(x) for x in listeners]
    return doc


def _mesh_ctx(mode: mesh.MtlsMode) -> Any:
    hello = md.svc(vips={"cluster1": ["10.96.0.10"]})
    web = md.svc(
        "web",
        "sample",
        (("http", 80), ("grpc-api", 9000), ("tcp-db", 5432)),
        vips={"cluster1": ["10.96.0.11"]},
    )
    istiod = md.svc(
        "istiod", "istio-system", (("grpc-xds", 15010), ("https-dns", 15012), ("https-webhook", 443))
    )
    docs = [
        d
        for f in ("expose-istiod.yaml", "expose-services.yaml")
        for d in yaml.safe_load_all((DATA / f).read_text())
    ]
    cfg, problems = networking_config.build(docs)
    assert problems == []
    eps = {
        hello.hostname: md.shards(
            md.ep("127.0.1.5", tls=True, sa="hw"), md.ep("127.0.2.5", "cluster2", tls=True)
        ),
        web.hostname: md.shards(md.ep("127.0.1.5", ports={"http": 8080, "grpc-api": 9000, "tcp-db": 5432})),
    }
    return md.ctx([hello, web, istiod], eps, mesh_config=mesh.MeshConfig(mtls_mode=mode), networking=cfg)


@pytest.mark.parametrize("mode", [mesh.MtlsMode.PERMISSIVE, mesh.MtlsMode.STRICT])
@pytest.mark.parametrize("sds", [True, False])
def test_explicit_sidecar_config_is_accepted_by_envoy(mode: mesh.MtlsMode, sds: bool) -> None:
    g = generator.Generator()
    c = _mesh_ctx(mode)
    meta = {"MESHPLANE_LOCALHOST": "127.0.101.5", "INTERCEPTION_MODE": "NONE"}
    meta |= {} if sds else {"MESHPLANE_SDS": "false"}
    p = md.proxy("127.0.1.5", metadata=meta)
    clusters = _decode(g.generate(resources.TYPE_CDS, p, c, None), cluster_pb2.Cluster)
    listeners = _decode(g.generate(resources.TYPE_LDS, p, c, None), listener_pb2.Listener)
    routes = _decode(g.generate(resources.TYPE_RDS, p, c, None), route_pb2.RouteConfiguration)
    assert {"inbound|8080||", "inbound|5000||", "inbound|9000||", "inbound|5432||"} <= {
        x.name for x in clusters
    }
    assert len(listeners) == (5 if sds or mode is mesh.MtlsMode.PERMISSIVE else 1)
    assert routes and routes[0].virtual_hosts
    doc = _bootstrap(clusters, listeners + [_route_holder(rc, i) for i, rc in enumerate(routes)])
    result = envoyproc.validate(doc)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("policy", list(mesh.OutboundTrafficPolicy))
@pytest.mark.parametrize("mode", [mesh.MtlsMode.PERMISSIVE, mesh.MtlsMode.STRICT])
@pytest.mark.parametrize("sds", [True, False])
def test_captured_sidecar_config_is_accepted_by_envoy(
    mode: mesh.MtlsMode, sds: bool, policy: mesh.OutboundTrafficPolicy
) -> None:
    g = generator.Generator()
    c = _mesh_ctx(mode)
    c = dataclasses.replace(c, mesh=dataclasses.replace(c.mesh, outbound_traffic_policy=policy))
    p = md.proxy(
        "127.0.1.5", metadata={"INTERCEPTION_MODE": "REDIRECT"} | ({} if sds else {"MESHPLANE_SDS": "false"})
    )
    clusters = _decode(g.generate(resources.TYPE_CDS, p, c, None), cluster_pb2.Cluster)
    listeners = _decode(g.generate(resources.TYPE_LDS, p, c, None), listener_pb2.Listener)
    routes = _decode(g.generate(resources.TYPE_RDS, p, c, None), route_pb2.RouteConfiguration)
    assert {"PassthroughCluster", "BlackHoleCluster", "InboundPassthroughCluster"} <= {
        x.name for x in clusters
    }
    assert [x.name for x in listeners] == [
        "virtualOutbound", "0.0.0.0_80", "0.0.0.0_5000", "0.0.0.0_9000", "0.0.0.0_15010", "10.96.0.11_5432",
        "virtualInbound",
    ]  # fmt: skip
    assert [r.name for r in routes] == ["80", "5000", "9000", "15010"]
    doc = _bootstrap(clusters, listeners + [_route_holder(rc, i) for i, rc in enumerate(routes)])
    result = envoyproc.validate(doc)
    assert result.returncode == 0, result.stdout + result.stderr


def test_router_config_is_accepted_by_envoy() -> None:
    g = generator.Generator()
    c = _mesh_ctx(mesh.MtlsMode.PERMISSIVE)
    p = md.proxy("127.0.1.20", kind=proxy_model.ProxyType.ROUTER, labels={"istio": "eastwestgateway"})
    p = dataclasses.replace(p, ip_addresses=("127.0.1.20", "127.0.3.7"))  # listens on both
    clusters = _decode(g.generate(resources.TYPE_CDS, p, c, None), cluster_pb2.Cluster)
    listeners = _decode(g.generate(resources.TYPE_LDS, p, c, None), listener_pb2.Listener)
    assert [x.address.socket_address.port_value for x in listeners] == [15012, 15017, 15443]
    result = envoyproc.validate(_bootstrap(clusters, listeners))
    assert result.returncode == 0, result.stdout + result.stderr


def test_envoy_rejects_duplicate_domains_which_we_never_emit() -> None:
    """The premise of rds' uniqueness rule, checked against Envoy itself."""
    dup = route_pb2.RouteConfiguration(
        name="dup",
        virtual_hosts=[
            route_components_pb2.VirtualHost(name="a", domains=["helloworld:5000"], routes=[]),
            route_components_pb2.VirtualHost(name="b", domains=["helloworld:5000"], routes=[]),
        ],
    )
    result = envoyproc.validate(_bootstrap([], [_route_holder(dup, 0)]))
    assert result.returncode != 0
    assert "domain" in (result.stdout + result.stderr).lower()
    # two services claiming the same VIP: our route config stays valid
    a, b = md.svc("a", vips={"cluster1": ["10.96.0.1"]}), md.svc("b", vips={"cluster1": ["10.96.0.1"]})
    g = generator.Generator()
    (rc,) = _decode(
        g.generate(resources.TYPE_RDS, md.proxy(), md.ctx([a, b]), None), route_pb2.RouteConfiguration
    )
    result = envoyproc.validate(_bootstrap([], [_route_holder(rc, 0)]))
    assert result.returncode == 0, result.stdout + result.stderr
