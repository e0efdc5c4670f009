"""A captured sidecar's layout (INTERCEPTION_MODE REDIRECT) against Istio's names and structure
(pilot/pkg/networking/core/listener.go, listener_builder.go; `istioctl proxy-config listeners`)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshplane.model import mesh
from meshplane.xds import generator, resources
from tests.support import meshdata as md

WEB = "web.sample.svc.cluster.local"
SERVER_IP = "10.244.1.5"


def _ctx(mode: mesh.MtlsMode = mesh.MtlsMode.PERMISSIVE, policy: Any = None) -> Any:
    web = md.svc(
        "web",
        "sample",
        (("http", 80), ("tcp-db", 5432), ("", 7000)),  # HTTP, TCP and an unnamed (sniffed) port
        vips={"cluster1": ["10.96.0.11"], "cluster2": ["10.97.0.11"]},
    )
    eps = {web.hostname: md.shards(md.ep(SERVER_IP, ports={"http": 8080, "tcp-db": 5432, "": 7000}))}
    cfg = mesh.MeshConfig(mtls_mode=mode)
    if policy is not None:
        cfg = dataclasses.replace(cfg, outbound_traffic_policy=policy)
    return md.ctx([web], eps, mesh_config=cfg)


def _proxy(ip: str = "10.244.1.9", **meta: str) -> Any:
    return md.proxy(ip, metadata={"INTERCEPTION_MODE": "REDIRECT", **meta})


def _decode(g: resources.Generated, cls: Any) -> dict[str, Any]:
    out = {}
    for r in g.resources:
        m = cls()
        assert r.body.Unpack(m)
        out[r.name] = m
    return out


def _listeners(proxy: Any, ctx: Any) -> dict[str, listener_pb2.Listener]:
    return _decode(
        generator.Generator().generate(resources.TYPE_LDS, proxy, ctx, None), listener_pb2.Listener
    )


def _tcp_cluster(chain: listener_components_pb2.FilterChain) -> str:
    (f,) = chain.filters
    cfg = tcp_proxy_pb2.TcpProxy()
    assert f.typed_config.Unpack(cfg)
    return cfg.cluster


def _hcm(chain: listener_components_pb2.FilterChain) -> hcm_pb2.HttpConnectionManager:
    (f,) = chain.filters
    cfg = hcm_pb2.HttpConnectionManager()
    assert f.typed_config.Unpack(cfg), f.name
    return cfg


def test_outbound_side_has_istios_listeners() -> None:
    lds = _listeners(_proxy(), _ctx())
    assert list(lds) == ["virtualOutbound", "0.0.0.0_80", "0.0.0.0_7000", "10.96.0.11_5432",
                         "10.96.0.11_7000", "virtualInbound"]  # fmt: skip
    vo = lds["virtualOutbound"]
    assert (vo.address.socket_address.address, vo.address.socket_address.port_value) == ("0.0.0.0", 15001)
    assert vo.use_original_dst.value is True
    assert [c.name for c in vo.filter_chains] == ["virtualOutbound-blackhole", "virtualOutbound-catchall-tcp"]
    assert vo.filter_chains[0].filter_chain_match.destination_port.value == 15001
    assert [_tcp_cluster(c) for c in vo.filter_chains] == ["BlackHoleCluster", "PassthroughCluster"]
    # HTTP port: not bound, HTTP by route table "80", anything else passed through
    http = lds["0.0.0.0_80"]
    assert http.HasField("bind_to_port") and http.bind_to_port.value is False
    assert [f.name for f in http.listener_filters] == [
        "envoy.filters.listener.tls_inspector",
        "envoy.filters.listener.http_inspector",
    ]
    (chain,) = http.filter_chains
    assert list(chain.filter_chain_match.application_protocols) == ["http/1.1", "h2c"]
    assert _hcm(chain).rds.route_config_name == "80"
    assert http.default_filter_chain.name == "PassthroughFilterChain"
    assert _tcp_cluster(http.default_filter_chain) == "PassthroughCluster"
    # TCP port: one listener on the service's VIP in the proxy's own cluster
    tcp = lds["10.96.0.11_5432"]
    assert tcp.address.socket_address.address == "10.96.0.11" and tcp.bind_to_port.value is False
    assert [_tcp_cluster(c) for c in tcp.filter_chains] == [f"outbound|5432||{WEB}"]
    # unnamed port: sniffed; HTTP by route table "7000", the rest to the service's cluster
    sniffed = lds["10.96.0.11_7000"]
    assert _hcm(sniffed.filter_chains[0]).rds.route_config_name == "7000"
    assert _tcp_cluster(sniffed.default_filter_chain) == f"outbound|7000||{WEB}"
    assert sniffed.continue_on_listener_filters_timeout is True


def test_a_proxy_in_another_cluster_uses_that_clusters_vip() -> None:
    lds = _listeners(md.proxy("10.245.1.9", "cluster2", metadata={"INTERCEPTION_MODE": "REDIRECT"}), _ctx())
    assert "10.97.0.11_5432" in lds and "10.96.0.11_5432" not in lds


def test_registry_only_blackholes_unknown_destinations() -> None:
    ctx = _ctx(policy=mesh.OutboundTrafficPolicy.REGISTRY_ONLY)
    lds = _listeners(_proxy(), ctx)
    assert _tcp_cluster(lds["virtualOutbound"].filter_chains[1]) == "BlackHoleCluster"
    assert _tcp_cluster(lds["0.0.0.0_80"].default_filter_chain) == "BlackHoleCluster"
    rds = _decode(
        generator.Generator().generate(resources.TYPE_RDS, _proxy(), ctx, None), route_pb2.RouteConfiguration
    )
    last = rds["80"].virtual_hosts[-1]
    assert (last.name, list(last.domains)) == ("block_all", ["*"])
    assert last.routes[0].direct_response.status == 502


def test_route_table_per_port_ends_with_allow_any() -> None:
    rds = _decode(
        generator.Generator().generate(resources.TYPE_RDS, _proxy(), _ctx(), None),
        route_pb2.RouteConfiguration,
    )
    assert list(rds) == ["80", "7000"]
    names = [vh.name for vh in rds["80"].virtual_hosts]
    assert names == [f"{WEB}:80", "allow_any"]
    web = rds["80"].virtual_hosts[0]
    assert {"web", "web.sample", WEB, "10.96.0.11", "web:80", "10.96.0.11:80"} <= set(web.domains)
    assert web.routes[0].route.cluster == f"outbound|80||{WEB}"
    assert rds["80"].virtual_hosts[1].routes[0].route.cluster == "PassthroughCluster"
    # Envoy asks for one table by name
    only = generator.Generator().generate(resources.TYPE_RDS, _proxy(), _ctx(), frozenset({"7000", "15001"}))
    assert only.names == frozenset({"7000"})


def _inbound(mode: mesh.MtlsMode, **meta: str) -> listener_pb2.Listener:
    return _listeners(_proxy(SERVER_IP, **meta), _ctx(mode))["virtualInbound"]


def _key(c: listener_components_pb2.FilterChain) -> tuple[str, str, tuple[str, ...]]:
    m = c.filter_chain_match
    return c.name, m.transport_protocol, tuple(m.application_protocols)


def test_virtual_inbound_permissive() -> None:
    vi = _inbound(mesh.MtlsMode.PERMISSIVE)
    assert vi.address.socket_address.port_value == 15006
    assert [f.name for f in vi.listener_filters] == [
        "envoy.filters.listener.original_dst",
        "envoy.filters.listener.tls_inspector",
        "envoy.filters.listener.http_inspector",
    ]
    # sniffing only where it is needed: the undeclared port 7000, not 8080 (HTTP) or 5432 (TCP)
    (rule,) = vi.listener_filters[2].filter_disabled.not_match.or_match.rules
    assert (rule.destination_port_range.start, rule.destination_port_range.end) == (7000, 7001)
    chains = [(c.name, c.filter_chain_match.destination_port.value, c.filter_chain_match.transport_protocol,
               tuple(c.filter_chain_match.application_protocols)) for c in vi.filter_chains]  # fmt: skip
    assert chains[0] == ("virtualInbound-blackhole", 15006, "", ())
    istio_alpn = ("istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2")
    assert ("0.0.0.0_8080", 8080, "tls", istio_alpn) in chains
    assert ("0.0.0.0_8080", 8080, "raw_buffer", ()) in chains
    assert ("0.0.0.0_5432", 5432, "tls", istio_alpn) in chains
    # the sniffed port: plaintext HTTP to an HCM, the rest to tcp_proxy
    assert ("0.0.0.0_7000", 7000, "raw_buffer", ("http/1.1", "h2c")) in chains
    assert chains[-3:] == [
        ("virtualInbound", 0, "tls", istio_alpn),
        ("virtualInbound", 0, "raw_buffer", ()),
        ("virtualInbound", 0, "tls", ()),
    ]
    by = {_key(c): c for c in vi.filter_chains}
    hcm = _hcm(by[("0.0.0.0_8080", "tls", istio_alpn)])
    assert hcm.route_config.virtual_hosts[0].routes[0].route.cluster == "inbound|8080||"
    assert hcm.forward_client_cert_details == hcm_pb2.HttpConnectionManager.APPEND_FORWARD
    assert by[("0.0.0.0_8080", "tls", istio_alpn)].transport_socket.name == "envoy.transport_sockets.tls"
    assert _tcp_cluster(by[("0.0.0.0_5432", "raw_buffer", ())]) == "inbound|5432||"
    assert _tcp_cluster(by[("virtualInbound", "raw_buffer", ())]) == "InboundPassthroughCluster"


def test_virtual_inbound_strict_accepts_only_istio_mtls() -> None:
    vi = _inbound(mesh.MtlsMode.STRICT)
    assert "envoy.filters.listener.http_inspector" not in [f.name for f in vi.listener_filters]
    transports = {c.filter_chain_match.transport_protocol for c in vi.filter_chains[1:]}
    assert transports == {"tls"}
    assert all(c.HasField("transport_socket") for c in vi.filter_chains[1:])
    # without its certificate a STRICT proxy can serve nothing but the blackhole chain
    bare = _inbound(mesh.MtlsMode.STRICT, MESHPLANE_SDS="false")
    assert [c.name for c in bare.filter_chains] == ["virtualInbound-blackhole"]


def test_clusters_of_a_captured_sidecar() -> None:
    cds = _decode(
        generator.Generator().generate(resources.TYPE_CDS, _proxy(SERVER_IP), _ctx(), None),
        cluster_pb2.Cluster,
    )
    assert cds["PassthroughCluster"].type == cluster_pb2.Cluster.ORIGINAL_DST
    assert cds["PassthroughCluster"].lb_policy == cluster_pb2.Cluster.CLUSTER_PROVIDED
    assert cds["BlackHoleCluster"].type == cluster_pb2.Cluster.STATIC
    assert not cds["BlackHoleCluster"].load_assignment.endpoints
    ip = cds["InboundPassthroughCluster"]
    assert ip.type == cluster_pb2.Cluster.ORIGINAL_DST
    assert ip.upstream_bind_config.source_address.address == "127.0.0.6"
    # the app is reached on the pod's own loopback
    app = cds["inbound|8080||"].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (app.address, app.port_value) == ("127.0.0.1", 8080)


def test_interception_mode_picks_the_layout(caplog: pytest.LogCaptureFixture) -> None:
    explicit = _listeners(md.proxy(SERVER_IP, metadata={"INTERCEPTION_MODE": "NONE"}), _ctx())
    assert list(explicit) == [
        "127.0.0.1_15001",
        f"{SERVER_IP}_5432",
        f"{SERVER_IP}_7000",
        f"{SERVER_IP}_8080",
    ]
    # absent: Istio's default, REDIRECT
    assert "virtualOutbound" in _listeners(md.proxy(SERVER_IP), _ctx())
    with caplog.at_level(logging.WARNING):
        tproxy = _listeners(md.proxy(SERVER_IP, metadata={"INTERCEPTION_MODE": "TPROXY"}), _ctx())
    assert "virtualInbound" in tproxy
    assert "INTERCEPTION_MODE='TPROXY' is not implemented" in caplog.text


@pytest.mark.parametrize("port", [15001, 15006])
def test_no_outbound_listener_on_a_capture_port(port: int) -> None:
    svc = md.svc("odd", "sample", (("http", port),), vips={"cluster1": ["10.96.0.20"]})
    lds = _listeners(_proxy(), md.ctx([svc], {}))
    assert f"0.0.0.0_{port}" not in lds
