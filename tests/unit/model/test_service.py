from meshplane.model import ids, service


def test_hostname_is_name_namespace_svc_domain() -> None:
    assert ids.service_hostname("helloworld", "sample") == "helloworld.sample.svc.cluster.local"
    assert ids.service_hostname("a", "b", "example.org") == "a.b.svc.example.org"


def test_port_protocol_follows_istio_selection() -> None:
    p = service.port_protocol
    assert p("http") is service.Protocol.HTTP
    assert p("http-web") is service.Protocol.HTTP
    assert p("grpc-api") is service.Protocol.GRPC
    assert p("tcp-istiod") is service.Protocol.TCP
    assert p("tls-istiod") is service.Protocol.TLS
    assert p("web", app_protocol="http") is service.Protocol.HTTP
    assert p("web", app_protocol="kubernetes.io/h2c") is service.Protocol.HTTP2
    # nothing declared: sniffed by the sidecar (Istio's protocol.Unsupported)
    assert p("unnamed") is service.Protocol.UNSUPPORTED
    assert p("") is service.Protocol.UNSUPPORTED
    assert p("web", app_protocol="postgresql") is service.Protocol.UNSUPPORTED
    assert p("http", k8s_protocol="UDP") is service.Protocol.UDP
