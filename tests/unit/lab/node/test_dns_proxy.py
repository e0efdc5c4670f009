"""lab.dns and lab.proxy: the hosts file's lines, the proxy's frontends and backend choice."""

from __future__ import annotations

from typing import Any

from meshplane.lab.node import dns, kubeproxy
from meshplane.runtime import resolve


def svc(name: str, ns: str, cluster_ip: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": cluster_ip, "ports": [{"name": "grpc", "port": 15012}], **spec},
    }


SLICE = {
    "metadata": {"namespace": "istio-system", "labels": {"kubernetes.io/service-name": "istiod"}},
    "ports": [{"name": "grpc", "port": 15012}],
    "endpoints": [
        {"addresses": ["127.0.3.1"], "conditions": {"ready": True}},
        {"addresses": ["127.0.3.9"], "conditions": {"ready": False, "serving": True, "terminating": True}},
    ],
}


def test_hosts_file_lists_every_service_name_form() -> None:
    text = dns.render(
        [
            svc("istiod", "istio-system", "127.0.20.5"),
            svc("headless", "istio-system", "None"),
            svc("ext", "default", "", type="ExternalName", externalName="example.com"),
        ],
        [
            {
                **SLICE,
                "metadata": {
                    "namespace": "istio-system",
                    "labels": {"kubernetes.io/service-name": "headless"},
                },
            }
        ],
        "cluster2",
    )
    table = resolve.parse_hosts(text)
    assert table["istiod.istio-system.svc"] == table["istiod.istio-system.svc.cluster.local"] == "127.0.20.5"
    assert table["istiod.istio-system"] == "127.0.20.5"
    assert table["headless.istio-system.svc"] == "127.0.3.1"  # ready endpoints only
    assert "ext.default.svc" not in table
    assert text.startswith("# meshplane lab cluster DNS for cluster2")


def test_frontends_cluster_ip_and_load_balancer() -> None:
    lb = svc(
        "gw",
        "istio-system",
        "127.0.10.4",
        type="LoadBalancer",
        ports=[{"name": "tls", "port": 15443}, {"name": "dns", "port": 53, "protocol": "UDP"}],
    )
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.3.1"}]}}
    got = {(f.ip, f.port, r.port_name) for f, r in kubeproxy.frontends(lb)}
    assert got == {("127.0.10.4", 15443, "tls"), ("127.0.3.1", 15443, "tls")}
    assert kubeproxy.frontends(svc("x", "ns", "10.96.0.5")) == []  # not bindable on loopback: skipped
    assert kubeproxy.frontends(svc("h", "ns", "None")) == []


def test_backends_prefer_ready_then_terminating() -> None:
    assert kubeproxy.backends([SLICE], "grpc") == [("127.0.3.1", 15012)]
    only_terminating = {**SLICE, "endpoints": SLICE["endpoints"][1:]}
    assert kubeproxy.backends([only_terminating], "grpc") == [("127.0.3.9", 15012)]
    assert kubeproxy.backends([SLICE], "other-port") == []
