from __future__ import annotations

from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from meshplane.model import mesh, service
from meshplane.model.ids import ClusterId
from meshplane.xds import filters, inbound, lds, mtls, proxyview
from tests.support import meshdata as md

_HCM = hcm_pb2.HttpConnectionManager


def _hcm(chain) -> hcm_pb2.HttpConnectionManager:  # type: ignore[no-untyped-def]
    out = _HCM()
    assert chain.filters[0].name == filters.HCM
    assert chain.filters[0].typed_config.Unpack(out)
    return out


def test_outbound_listener_is_explicit_http_on_pod_localhost() -> None:
    lis = lds.outbound("127.0.101.5")
    assert lis.name == "127.0.101.5_15001"
    sa = lis.address.socket_address
    assert (sa.address, sa.port_value) == ("127.0.101.5", 15001)
    hcm = _hcm(lis.filter_chains[0])
    assert hcm.rds.route_config_name == "15001"
    assert hcm.rds.config_source.HasField("ads")
    assert hcm.http_protocol_options.allow_absolute_url.value is True
    assert [f.name for f in hcm.http_filters] == [filters.CORS, filters.FAULT, filters.ROUTER]


def _port(protocol: service.Protocol = service.Protocol.HTTP) -> inbound.InboundPort:
    return inbound.InboundPort("127.0.1.5", 5000, protocol, (md.HELLO,))


def test_permissive_has_mtls_and_plaintext_chains() -> None:
    lis = lds.inbound_listener(_port(), mesh.MtlsMode.PERMISSIVE, sds=True)
    assert lis is not None
    assert lis.name == "127.0.1.5_5000"
    assert lis.address.socket_address.address == "127.0.1.5"
    assert [f.name for f in lis.listener_filters] == [filters.TLS_INSPECTOR]
    tls_chain, plain_chain = lis.filter_chains
    assert tls_chain.filter_chain_match.transport_protocol == "tls"
    assert list(tls_chain.filter_chain_match.application_protocols) == list(mtls.ALPN_ISTIO_MTLS)
    ctx = tls_pb2.DownstreamTlsContext()
    assert tls_chain.transport_socket.typed_config.Unpack(ctx)
    assert ctx.require_client_certificate.value is True
    assert [s.name for s in ctx.common_tls_context.tls_certificate_sds_secret_configs] == ["default"]
    assert (
        ctx.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name
        == "ROOTCA"
    )
    assert plain_chain.filter_chain_match.transport_protocol == "raw_buffer"
    assert not plain_chain.HasField("transport_socket")
    for chain in (tls_chain, plain_chain):
        hcm = _hcm(chain)
        assert hcm.forward_client_cert_details == _HCM.APPEND_FORWARD
        assert hcm.set_current_client_cert_details.uri is True
        route = hcm.route_config.virtual_hosts[0].routes[0]
        assert route.route.cluster == "inbound|5000||"


def test_strict_has_only_the_tls_chain() -> None:
    lis = lds.inbound_listener(_port(), mesh.MtlsMode.STRICT, sds=True)
    assert lis is not None
    (chain,) = lis.filter_chains
    assert chain.filter_chain_match.transport_protocol == "tls"
    assert chain.HasField("transport_socket")


def test_without_sds_plaintext_only_and_strict_gets_nothing() -> None:
    lis = lds.inbound_listener(_port(), mesh.MtlsMode.PERMISSIVE, sds=False)
    assert lis is not None
    (chain,) = lis.filter_chains
    assert not chain.HasField("filter_chain_match") and not chain.HasField("transport_socket")
    assert not lis.listener_filters
    assert lds.inbound_listener(_port(), mesh.MtlsMode.STRICT, sds=False) is None


def test_tcp_port_uses_tcp_proxy() -> None:
    lis = lds.inbound_listener(_port(service.Protocol.TCP), mesh.MtlsMode.PERMISSIVE, sds=True)
    assert lis is not None
    proxy_cfg = tcp_proxy_pb2.TcpProxy()
    assert lis.filter_chains[0].filters[0].typed_config.Unpack(proxy_cfg)
    assert proxy_cfg.cluster == "inbound|5000||"


def test_own_ports_from_endpoints_with_the_proxy_ip_in_its_cluster() -> None:
    hello = md.svc()
    metrics = md.svc("metrics", ports=(("http-metrics", 9090), ("tcp-debug", 7000)))
    c = md.ctx(
        [hello, metrics],
        {
            hello.hostname: md.shards(
                md.ep("127.0.1.5", "cluster1", {"http": 8080}), md.ep("127.0.1.5", "cluster2")
            ),
            metrics.hostname: md.shards(
                md.ep("127.0.1.5", "cluster1", {"http-metrics": 8080, "tcp-debug": 7000})
            ),
        },
    )
    index = inbound.build_index(c)
    view = proxyview.InboundView(ClusterId("cluster1"), ("127.0.1.5",), "127.0.101.5", True)
    ports = inbound.own_ports(view, c.services, index)
    assert [(p.port, p.protocol, p.hosts) for p in ports] == [
        (7000, service.Protocol.TCP, (metrics.hostname,)),
        (8080, service.Protocol.HTTP, (hello.hostname, metrics.hostname)),
    ]
    other = proxyview.InboundView(ClusterId("cluster3"), ("127.0.1.5",), "127.0.0.1", True)
    assert inbound.own_ports(other, c.services, index) == ()


def test_localhost_from_metadata() -> None:
    assert proxyview.localhost(md.proxy()) == "127.0.0.1"
    assert proxyview.localhost(md.proxy(metadata={"MESHPLANE_LOCALHOST": "127.0.101.9"})) == "127.0.101.9"
    assert proxyview.localhost(md.proxy(metadata={"MESHPLANE_LOCALHOST": "not-an-ip"})) == "127.0.0.1"
    assert proxyview.has_sds(md.proxy()) is True
    assert proxyview.has_sds(md.proxy(metadata={"MESHPLANE_SDS": "false"})) is False
