from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshplane.model import proxy as proxy_model
from meshplane.networking import config as networking_config
from meshplane.xds import filters, gateways, generator, resources
from tests.support import meshdata as md

DATA = Path(__file__).parent / "data"
EW_LABELS = {"istio": "eastwestgateway", "app": "istio-eastwestgateway"}
ISTIOD = md.svc("istiod", "istio-system", (("grpc-xds", 15010), ("https-dns", 15012), ("https-webhook", 443)))


def _objects(*files: str, extra: list[dict[str, Any]] | None = None) -> networking_config.NetworkingConfig:
    docs = [d for f in files for d in yaml.safe_load_all((DATA / f).read_text())] + (extra or [])
    cfg, problems = networking_config.build(docs)
    assert problems == []
    return cfg


def _router(labels: dict[str, str] = EW_LABELS) -> proxy_model.Proxy:
    return md.proxy(
        "127.0.1.20", kind=proxy_model.ProxyType.ROUTER, namespace="istio-system", pod="ew", labels=labels
    )


def _tcp(chain) -> tcp_proxy_pb2.TcpProxy:  # type: ignore[no-untyped-def]
    out = tcp_proxy_pb2.TcpProxy()
    assert chain.filters[0].name == filters.TCP_PROXY
    assert chain.filters[0].typed_config.Unpack(out)
    return out


def _decode(g: resources.Generated, msg_type):  # type: ignore[no-untyped-def]
    out = []
    for r in g.resources:
        m = msg_type()
        assert r.body.Unpack(m)
        out.append(m)
    return out


def test_expose_istiod_passes_tls_through_to_istiod() -> None:
    cfg = _objects("expose-istiod.yaml")
    lis = gateways.listeners(_router(), cfg, {ISTIOD.hostname: ISTIOD})
    assert [x.name for x in lis] == ["127.0.1.20_15012", "127.0.1.20_15017"]
    for x, cluster in zip(
        lis,
        [
            "outbound|15012||istiod.istio-system.svc.cluster.local",
            "outbound|443||istiod.istio-system.svc.cluster.local",
        ],
        strict=True,
    ):
        assert x.address.socket_address.address == "127.0.1.20"
        assert [f.name for f in x.listener_filters] == [filters.TLS_INSPECTOR]
        (chain,) = x.filter_chains
        assert list(chain.filter_chain_match.server_names) == []  # sniHosts "*": any SNI
        assert not chain.HasField("transport_socket")  # bytes untouched
        assert _tcp(chain).cluster == cluster


def test_expose_istiod_through_the_generator_router_gets_outbound_clusters_only() -> None:
    hello = md.svc()
    c = md.ctx([ISTIOD, hello], networking=_objects("expose-istiod.yaml"))
    g = generator.Generator()
    clusters = g.generate(resources.TYPE_CDS, _router(), c, None)
    assert sorted(clusters.names) == [
        "outbound|15010||istiod.istio-system.svc.cluster.local",
        "outbound|15012||istiod.istio-system.svc.cluster.local",
        "outbound|443||istiod.istio-system.svc.cluster.local",
        "outbound|5000||helloworld.sample.svc.cluster.local",
    ]
    lis = _decode(g.generate(resources.TYPE_LDS, _router(), c, None), listener_pb2.Listener)
    assert [x.address.socket_address.port_value for x in lis] == [15012, 15017]
    assert g.generate(resources.TYPE_RDS, _router(), c, None).resources == ()


def test_gateway_selects_by_labels_only() -> None:
    cfg = _objects("expose-istiod.yaml")
    assert gateways.listeners(_router({"istio": "ingressgateway"}), cfg, {ISTIOD.hostname: ISTIOD}) == []
    assert len(cfg.gateways_for({"istio": "eastwestgateway", "extra": "x"})) == 1


def test_auto_passthrough_routes_istio_sni_to_sni_dnat_clusters() -> None:
    hello = md.svc()
    c = md.ctx([ISTIOD, hello], networking=_objects("expose-services.yaml"))
    g = generator.Generator()
    (lis,) = _decode(g.generate(resources.TYPE_LDS, _router(), c, None), listener_pb2.Listener)
    assert lis.address.socket_address.port_value == 15443
    by_sni = {tuple(ch.filter_chain_match.server_names): _tcp(ch).cluster for ch in lis.filter_chains}
    name = "outbound_.5000_._.helloworld.sample.svc.cluster.local"
    assert by_sni[(name,)] == name
    assert len(by_sni) == 4  # every port of both services
    clusters = g.generate(resources.TYPE_CDS, _router(), c, None)
    assert name in clusters.names and "outbound|5000||helloworld.sample.svc.cluster.local" in clusters.names
    endpoints = g.generate(resources.TYPE_EDS, _router(), c, frozenset({name}))
    assert endpoints.names == {name}


def _vs(
    name: str,
    tls: list[dict[str, Any]] | None = None,
    http: list[dict[str, Any]] | None = None,
    hosts: list[str] | None = None,
    gateways_: list[str] | None = None,
    ns: str = "istio-system",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": hosts or ["*"], "gateways": gateways_ or ["istio-system/istiod-gateway"]}
    if tls is not None:
        spec["tls"] = tls
    if http is not None:
        spec["http"] = http
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def test_duplicate_sni_match_keeps_the_first() -> None:
    dup = _vs(
        "zz-dup",
        tls=[
            {
                "match": [{"port": 15012, "sniHosts": ["*"]}],
                "route": [{"destination": {"host": "other.ns.svc.cluster.local", "port": {"number": 1}}}],
            }
        ],
    )
    cfg = _objects("expose-istiod.yaml", extra=[dup])
    lis = gateways.listeners(_router(), cfg, {ISTIOD.hostname: ISTIOD})
    assert len(lis[0].filter_chains) == 1
    assert _tcp(lis[0].filter_chains[0]).cluster == "outbound|15012||istiod.istio-system.svc.cluster.local"


def test_sni_hosts_and_weights() -> None:
    vs = _vs(
        "sni",
        tls=[
            {
                "match": [{"port": 15012, "sniHosts": ["b.example.com", "a.example.com"]}],
                "route": [
                    {"destination": {"host": "a", "port": {"number": 1}}, "weight": 80},
                    {"destination": {"host": "b", "port": {"number": 1}}, "weight": 20},
                ],
            }
        ],
    )
    cfg = _objects("expose-istiod.yaml", extra=[vs])
    lis = gateways.listeners(_router(), cfg, {ISTIOD.hostname: ISTIOD})
    chains = {tuple(ch.filter_chain_match.server_names): _tcp(ch) for ch in lis[0].filter_chains}
    weighted = chains[("a.example.com", "b.example.com")].weighted_clusters.clusters
    assert [(w.name, w.weight) for w in weighted] == [
        ("outbound|1||a.istio-system.svc.cluster.local", 80),
        ("outbound|1||b.istio-system.svc.cluster.local", 20),
    ]


def test_server_host_namespace_limits_which_virtual_services_bind() -> None:
    gw = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "istiod-gateway", "namespace": "istio-system"},
        "spec": {
            "selector": {"istio": "eastwestgateway"},
            "servers": [
                {
                    "port": {"number": 15012, "protocol": "TLS", "name": "t"},
                    "tls": {"mode": "PASSTHROUGH"},
                    "hosts": ["other/*"],
                }
            ],
        },
    }
    vs = yaml.safe_load_all((DATA / "expose-istiod.yaml").read_text())
    cfg, problems = networking_config.build([gw, *[d for d in vs if d["kind"] == "VirtualService"]])
    assert problems == []
    assert gateways.listeners(_router(), cfg, {ISTIOD.hostname: ISTIOD}) == []


def test_http_server_routes_from_virtual_service() -> None:
    gw = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "web", "namespace": "sample"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {"port": {"number": 8080, "protocol": "HTTP", "name": "http"}, "hosts": ["*.example.com"]}
            ],
        },
    }
    vs = _vs(
        "hello",
        hosts=["hello.example.com"],
        gateways_=["web"],
        ns="sample",
        http=[
            {
                "match": [{"uri": {"prefix": "/hello"}}],
                "route": [
                    {
                        "destination": {"host": "helloworld", "port": {"number": 5000}, "subset": ""},
                        "weight": 90,
                    },
                    {"destination": {"host": "helloworld.sample.svc.cluster.local"}, "weight": 10},
                ],
            },
            {
                "match": [{"uri": {"exact": "/health"}}],
                "route": [{"destination": {"host": "helloworld"}}],
                "timeout": "1.5s",
            },
        ],
    )
    hello = md.svc()
    cfg, problems = networking_config.build([gw, vs])
    assert problems == []
    router = _router({"istio": "ingressgateway"})
    c = md.ctx([hello], networking=cfg)
    g = generator.Generator()
    (lis,) = _decode(g.generate(resources.TYPE_LDS, router, c, None), listener_pb2.Listener)
    assert lis.address.socket_address.port_value == 8080
    (rc,) = _decode(
        g.generate(resources.TYPE_RDS, router, c, frozenset({"http.8080"})), route_pb2.RouteConfiguration
    )
    assert rc.name == "http.8080"
    (vh,) = rc.virtual_hosts
    assert list(vh.domains) == ["hello.example.com", "hello.example.com:8080"]
    first, second = vh.routes
    assert first.match.prefix == "/hello"
    assert [(w.name, w.weight.value) for w in first.route.weighted_clusters.clusters] == [
        ("outbound|5000||helloworld.sample.svc.cluster.local", 90),
        ("outbound|5000||helloworld.sample.svc.cluster.local", 10),
    ]
    assert second.match.path == "/health"
    assert second.route.cluster == "outbound|5000||helloworld.sample.svc.cluster.local"
    assert (second.route.timeout.seconds, second.route.timeout.nanos) == (1, 500_000_000)


def test_tls_termination_servers_are_not_generated() -> None:
    gw = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "secure", "namespace": "sample"},
        "spec": {
            "selector": {"istio": "eastwestgateway"},
            "servers": [
                {
                    "port": {"number": 443, "protocol": "HTTPS", "name": "https"},
                    "hosts": ["*"],
                    "tls": {"mode": "SIMPLE", "credentialName": "cert"},
                }
            ],
        },
    }
    cfg, problems = networking_config.build([gw])
    assert problems == []
    assert gateways.listeners(_router(), cfg, {}) == []


def test_gateway_listens_on_every_pod_ip() -> None:
    cfg = _objects("expose-istiod.yaml")
    router = md.proxy("127.0.1.20", kind=proxy_model.ProxyType.ROUTER, labels=EW_LABELS)
    router = dataclasses.replace(router, ip_addresses=("127.0.1.20", "127.0.3.7", "127.0.1.20"))
    lis = gateways.listeners(router, cfg, {ISTIOD.hostname: ISTIOD})
    assert [a.address.socket_address.address for a in lis[0].additional_addresses] == ["127.0.3.7"]
