"""lab.addresses: pod IPs never handed out twice, pod-local addresses, LB claims across clusters."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.lab import addresses, errors


def test_pod_ips_round_robin_and_never_reused_while_held() -> None:
    ips = addresses.PodIPs("127.0.1.0/29")  # hosts .1-.6: .1 is the node
    assert ips.node_ip == "127.0.1.1"
    a, b = ips.allocate("a"), ips.allocate("b")
    assert (a, b) == ("127.0.1.2", "127.0.1.3")
    assert ips.allocate("a") == a
    ips.release("a")
    assert ips.allocate("c") == "127.0.1.4"  # round-robin: the freed address is not next
    assert ips.allocate("d", busy=["127.0.1.5"]) == "127.0.1.6"
    assert ips.allocate("e") == "127.0.1.2"  # wrapped around to the free one
    with pytest.raises(errors.AddressExhausted):
        ips.allocate("f", busy=["127.0.1.5"])
    assert not ips.claim("g", b) and ips.owner(b) == "b"
    assert not ips.claim("g", "127.0.1.1") and not ips.claim("g", "10.0.0.1")


def test_local_addresses() -> None:
    assert addresses.default_local_cidr("127.0.2.0/24") == "127.1.2.0/24"
    assert addresses.local_address("127.0.2.9", "127.0.2.0/24", "127.1.2.0/24") == "127.1.2.9"
    with pytest.raises(ValueError, match="not in the pod range"):
        addresses.local_address("127.0.3.9", "127.0.2.0/24", "127.1.2.0/24")


@pytest.mark.parametrize("cidr", ["10.0.0.0/24", "127.0.0.0/31", "not-a-cidr", "::1/128"])
def test_only_loopback_ranges(cidr: str) -> None:
    with pytest.raises(ValueError):
        addresses.network(cidr)


def test_lb_claims_are_unique_across_clusters(tmp_path: Path) -> None:
    one = addresses.LbClaims(tmp_path / "claims", "127.0.3.0/29")
    two = addresses.LbClaims(tmp_path / "claims", "127.0.3.0/29")
    a = one.claim("cluster1/istio-system/istio-eastwestgateway")
    b = two.claim("cluster2/ns/lb")
    assert a != b and {a, b} == {"127.0.3.1", "127.0.3.2"}
    assert one.claim("cluster1/istio-system/istio-eastwestgateway") == a
    with pytest.raises(errors.AddressExhausted, match="already in use"):
        two.claim("cluster2/ns/other", preferred=a)
    assert two.claim("cluster2/ns/other", preferred="127.0.3.5") == "127.0.3.5"
    one.release("cluster1/istio-system/istio-eastwestgateway")
    assert a not in two.claims()
    assert two.claim("cluster2/ns/third") == a
