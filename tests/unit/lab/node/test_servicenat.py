"""kube-proxy's iptables mode for netns labs: the DNAT rules of Services and their endpoints."""

from __future__ import annotations

from typing import Any

from meshplane.lab.controllers import endpointslices
from meshplane.lab.node import kubeproxy, servicenat

SERVES = servicenat.in_ranges(["198.18.11.0/24", "198.18.21.0/24"])


def svc(name: str, ip: str, port: int, lb: str = "", port_name: str = "http") -> dict[str, Any]:
    s: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"clusterIP": ip, "ports": [{"name": port_name, "port": port}]},
    }
    if lb:
        s["spec"]["type"] = "LoadBalancer"
        s["status"] = {"loadBalancer": {"ingress": [{"ip": lb}]}}
    return s


def eps(
    service: str, port: int, *addrs: tuple[str, dict[str, bool]], port_name: str = "http"
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{service}-x",
            "namespace": "ns",
            "labels": {endpointslices.SERVICE_NAME: service},
        },
        "ports": [{"name": port_name, "port": port}],
        "endpoints": [{"addresses": [a], "conditions": c} for a, c in addrs],
    }


READY = {"ready": True}


def table(
    services: list[dict[str, Any]], slices: list[dict[str, Any]]
) -> dict[kubeproxy.Frontend, list[tuple[str, int]]]:
    def slices_of(route: kubeproxy.Route) -> list[dict[str, Any]]:
        return [s for s in slices if s["metadata"]["labels"][endpointslices.SERVICE_NAME] == route.service]

    return servicenat.table(services, slices_of, SERVES)


def test_random_spread_over_ready_endpoints_with_kube_proxy_probabilities() -> None:
    t = table(
        [svc("hw", "198.18.11.5", 5000)],
        [eps("hw", 5000, ("198.18.1.7", READY), ("198.18.1.8", READY), ("198.18.1.9", {"ready": False}))],
    )
    text = servicenat.render("mp-x-cluster1", t)
    rules = [line for line in text.splitlines() if line.startswith("-A")]
    assert text.startswith("*nat\n:mp-x-cluster1 - [0:0]\n") and text.endswith("COMMIT\n")
    assert rules == [
        "-A mp-x-cluster1 -d 198.18.11.5/32 -p tcp -m tcp --dport 5000 -m statistic --mode random "
        "--probability 0.50000000000 -j DNAT --to-destination 198.18.1.7:5000",
        "-A mp-x-cluster1 -d 198.18.11.5/32 -p tcp -m tcp --dport 5000 "
        "-j DNAT --to-destination 198.18.1.8:5000",
    ]


def test_terminating_serving_endpoints_when_none_is_ready_and_no_rule_without_any() -> None:
    t = table(
        [svc("hw", "198.18.11.5", 5000), svc("empty", "198.18.11.6", 80)],
        [eps("hw", 5000, ("198.18.1.7", {"ready": False, "serving": True, "terminating": True}))],
    )
    assert t[kubeproxy.Frontend("198.18.11.5", 5000)] == [("198.18.1.7", 5000)]
    assert t[kubeproxy.Frontend("198.18.11.6", 80)] == []
    assert "198.18.11.6" not in servicenat.render("c", t)  # the reject chain refuses it at once


def test_an_endpoint_that_is_a_load_balancer_address_is_followed_to_its_pods() -> None:
    """cluster2's selectorless istiod Service points at the east-west gateway's LB address: one
    DNAT, straight to the gateway pod (a packet is DNAT'ed only once)."""
    t = table(
        [
            svc("istiod", "198.18.11.2", 15012, port_name="grpc"),
            svc("gw", "198.18.11.3", 15012, lb="198.18.21.1", port_name="grpc"),
        ],
        [
            eps("istiod", 15012, ("198.18.21.1", READY), port_name="grpc"),
            eps("gw", 15012, ("198.18.1.4", READY), port_name="grpc"),
        ],
    )
    assert t[kubeproxy.Frontend("198.18.11.2", 15012)] == [("198.18.1.4", 15012)]
    assert t[kubeproxy.Frontend("198.18.21.1", 15012)] == [("198.18.1.4", 15012)]


def test_a_loop_of_frontends_ends_without_rules_and_other_addresses_are_not_served() -> None:
    t = table(
        [svc("a", "198.18.11.2", 80), svc("b", "198.18.11.3", 80), svc("outside", "10.0.0.1", 80)],
        [eps("a", 80, ("198.18.11.3", READY)), eps("b", 80, ("198.18.11.2", READY))],
    )
    assert t[kubeproxy.Frontend("198.18.11.2", 80)] == []
    assert kubeproxy.Frontend("10.0.0.1", 80) not in t
