from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

from meshplane.model import service
from meshplane.xds import cds, mtls
from tests.support import meshdata as md


def _tls(c: cluster_pb2.Cluster) -> tls_pb2.UpstreamTlsContext:
    ctx = tls_pb2.UpstreamTlsContext()
    assert c.transport_socket_matches[0].transport_socket.typed_config.Unpack(ctx)
    return ctx


def test_outbound_cluster_is_istio_eds_cluster() -> None:
    s = md.svc()
    c = cds.outbound(s, s.ports[0], ["spiffe://cluster.local/ns/sample/sa/helloworld"], tls=True)
    assert c.name == "outbound|5000||helloworld.sample.svc.cluster.local"
    assert c.type == cluster_pb2.Cluster.EDS
    assert c.eds_cluster_config.service_name == c.name
    assert c.eds_cluster_config.eds_config.HasField("ads")
    assert c.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
    assert c.common_lb_config.HasField("healthy_panic_threshold")
    assert c.common_lb_config.healthy_panic_threshold.value == 0.0
    assert c.connect_timeout.seconds == 10
    assert not c.typed_extension_protocol_options  # HTTP/1.1 port
    istio = json_format.MessageToDict(c.metadata.filter_metadata["istio"])
    assert istio == {
        "services": [
            {"host": "helloworld.sample.svc.cluster.local", "name": "helloworld", "namespace": "sample"}
        ]
    }


def test_auto_mtls_socket_matches() -> None:
    s = md.svc()
    sans = ["spiffe://cluster.local/ns/sample/sa/a", "spiffe://cluster.local/ns/sample/sa/b"]
    c = cds.outbound(s, s.ports[0], sans, tls=True)
    assert not c.HasField("transport_socket")
    istio, plain = c.transport_socket_matches
    assert (istio.name, json_format.MessageToDict(istio.match)) == ("tlsMode-istio", {"tlsMode": "istio"})
    assert (plain.name, json_format.MessageToDict(plain.match)) == ("tlsMode-disabled", {})
    assert plain.transport_socket.name == mtls.RAW_SOCKET
    ctx = _tls(c)
    assert ctx.sni == "outbound_.5000_._.helloworld.sample.svc.cluster.local"
    common = ctx.common_tls_context
    assert list(common.alpn_protocols) == ["istio-peer-exchange", "istio"]
    assert [s.name for s in common.tls_certificate_sds_secret_configs] == ["default"]
    sds = common.tls_certificate_sds_secret_configs[0].sds_config.api_config_source
    assert sds.grpc_services[0].envoy_grpc.cluster_name == "sds-grpc"
    combined = common.combined_validation_context
    assert combined.validation_context_sds_secret_config.name == "ROOTCA"
    assert [m.exact for m in combined.default_validation_context.match_subject_alt_names] == sans


def test_http2_port_gets_h2_options_and_alpn() -> None:
    s = md.svc(ports=(("grpc-api", 9000),))
    assert s.ports[0].protocol is service.Protocol.GRPC
    c = cds.outbound(s, s.ports[0], [], tls=True)
    opts = http_protocol_options_pb2.HttpProtocolOptions()
    assert c.typed_extension_protocol_options[cds.HTTP_OPTIONS_KEY].Unpack(opts)
    assert opts.explicit_http_config.HasField("http2_protocol_options")
    assert list(_tls(c).common_tls_context.alpn_protocols) == ["istio-peer-exchange", "istio", "h2"]


def test_without_sds_there_is_no_tls_at_all() -> None:
    s = md.svc()
    c = cds.outbound(s, s.ports[0], ["spiffe://x/ns/a/sa/b"], tls=False)
    assert not c.transport_socket_matches and not c.HasField("transport_socket")


def test_identities_from_service_accounts_and_every_cluster() -> None:
    s = md.svc(service_accounts=["helloworld", "spiffe://other.domain/ns/x/sa/y"])
    sh = md.shards(
        md.ep("10.0.0.1", "cluster1", sa="v1"), md.ep("10.0.0.2", "cluster2", sa="v2", namespace="other")
    )
    assert cds.identities(s, sh, "cluster.local") == (
        "spiffe://cluster.local/ns/other/sa/v2",
        "spiffe://cluster.local/ns/sample/sa/helloworld",
        "spiffe://cluster.local/ns/sample/sa/v1",
        "spiffe://other.domain/ns/x/sa/y",
    )


def test_inbound_cluster_points_at_the_app_on_pod_localhost() -> None:
    c = cds.inbound(5000, "127.0.101.7", service.Protocol.HTTP)
    assert c.name == "inbound|5000||"
    assert c.type == cluster_pb2.Cluster.STATIC
    addr = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (addr.address, addr.port_value) == ("127.0.101.7", 5000)


def test_sni_dnat_cluster_has_no_tls_of_its_own() -> None:
    s = md.svc()
    c = cds.sni_dnat(s, s.ports[0])
    assert c.name == "outbound_.5000_._.helloworld.sample.svc.cluster.local"
    assert c.eds_cluster_config.service_name == c.name
    assert not c.transport_socket_matches and not c.HasField("transport_socket")


def test_cluster_ports_skip_udp_and_external_names() -> None:
    s = md.svc(ports=(("http", 80), ("udp-dns", 53)))
    s = service.Service(
        s.hostname, s.name, s.namespace, (s.ports[0], service.ServicePort("dns", 53, service.Protocol.UDP))
    )
    assert [p.port for p in cds.cluster_ports(s)] == [80]
    ext = service.Service(s.hostname, s.name, s.namespace, s.ports, external_name="example.com")
    assert cds.cluster_ports(ext) == ()
