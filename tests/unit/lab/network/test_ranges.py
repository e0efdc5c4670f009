"""lab.network.ranges: the lab's ranges are IPv4, disjoint, and clear of every route on the host."""

from __future__ import annotations

import pytest

from meshplane.lab import errors
from meshplane.lab.network import ranges

# what `ip -4 route show table all` prints on a machine like these (the interface's range differs)
HOST = """\
default via 192.0.2.1 dev eth0
192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2
local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1
local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1
broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1
local 192.0.2.2 dev eth0 table local proto kernel scope host src 192.0.2.2
broadcast 192.0.2.255 dev eth0 table local proto kernel scope link src 192.0.2.2
"""
DOCKER = HOST + "172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown\n"
MULTIPATH = HOST + "198.18.0.0/15 proto static\n\tnexthop via 192.0.2.7 dev eth0 weight 1\n"
BLACKHOLE = HOST + "blackhole 198.18.2.0/24 proto static\n"
UNREACHABLE_DEFAULT = "unreachable default table 100\n" + HOST
OWN_BRIDGE = HOST + (
    "198.18.1.0/24 dev mp-abc-br proto kernel scope link src 198.18.1.1\n"
    "local 198.18.1.1 dev mp-abc-br table local proto kernel scope host src 198.18.1.1\n"
)


def _ranges(*cidrs: str) -> list[ranges.Range]:
    return [ranges.parse(f"r{i}", c) for i, c in enumerate(cidrs)]


DEFAULTS = [r for c in ("cluster1", "cluster2") for r in ranges.cluster_ranges(c).all()]


ROUTE = "overlaps the host route"
CASES = [
    # (case, ranges, host routes, the lab's own devices, error or None)
    ("defaults on a plain host", DEFAULTS, HOST, (), None),
    ("defaults beside docker", DEFAULTS, DOCKER, (), None),
    ("default route ignored", DEFAULTS, UNREACHABLE_DEFAULT, (), None),
    ("the host's subnet", _ranges("192.0.2.0/25"), HOST, (), f"r0 192.0.2.0/25 {ROUTE} '192.0.2.0/24 dev"),
    ("holds the host's address", _ranges("192.0.0.0/16"), HOST, (), f"r0 192.0.0.0/16 {ROUTE}"),
    ("loopback", _ranges("127.0.1.0/24"), HOST, (), f"r0 127.0.1.0/24 {ROUTE} 'local 127.0.0.0/8"),
    ("in docker's bridge", _ranges("172.17.5.0/24"), DOCKER, (), f"{ROUTE} '172.17.0.0/16 dev docker0"),
    ("a multipath route", DEFAULTS, MULTIPATH, (), f"cluster1 pods 198.18.1.0/24 {ROUTE} '198.18.0.0/15"),
    ("a blackhole route", DEFAULTS, BLACKHOLE, (), f"cluster2 pods 198.18.2.0/24 {ROUTE} 'blackhole 198.18"),
    ("two ranges overlap", _ranges("198.18.1.0/24", "198.18.0.0/16"), HOST, (), "r0 .* overlaps r1 198.18"),
    ("the lab's own bridge", DEFAULTS, OWN_BRIDGE, ("mp-abc-br",), None),
    ("another lab's bridge", DEFAULTS, OWN_BRIDGE, ("mp-xyz-br",), f"{ROUTE} '198.18.1.0/24 dev mp-abc-br"),
]


@pytest.mark.parametrize(("case", "given", "routes", "own", "error"), CASES, ids=[c[0] for c in CASES])
def test_validate(
    case: str, given: list[ranges.Range], routes: str, own: tuple[str, ...], error: str | None
) -> None:
    if error is None:
        ranges.validate(given, routes, own_devices=own)
    else:
        with pytest.raises(errors.RangeError, match=error):
            ranges.validate(given, routes, own_devices=own)


@pytest.mark.parametrize(
    ("cidr", "error"),
    [
        ("fd00::/64", "pods fd00::/64 is not IPv4"),
        ("198.18.1.0/33", "pods '198.18.1.0/33' is not a network address range"),
        ("198.18.1.1/24", "pods '198.18.1.1/24' is not a network address range"),  # host bits set
        ("198.18.1.0/31", "pods 198.18.1.0/31 is too small"),
        ("lab", "pods 'lab' is not a network address range"),
    ],
)
def test_parse_names_the_range(cidr: str, error: str) -> None:
    with pytest.raises(errors.RangeError, match=error):
        ranges.parse("pods", cidr)


def test_cluster_ranges_defaults_and_overrides() -> None:
    c1 = ranges.cluster_ranges("cluster1")
    assert [str(r) for r in c1.all()] == [
        "cluster1 pods 198.18.1.0/24",
        "cluster1 services 198.18.11.0/24",
        "cluster1 load balancers 198.18.21.0/24",
    ]
    assert all(r.net.subnet_of(ranges.parse("benchmark", "198.18.0.0/15").net) for r in DEFAULTS)
    c3 = ranges.cluster_ranges("cluster3", "198.18.3.0/24", "198.18.13.0/24", "198.18.23.0/24")
    assert str(c3.pods) == "cluster3 pods 198.18.3.0/24"
    assert str(ranges.cluster_ranges("cluster1", pods="198.18.9.0/24").pods.net) == "198.18.9.0/24"
    with pytest.raises(errors.RangeError, match="cluster3 has no default pods, services, load balancers"):
        ranges.cluster_ranges("cluster3")
    with pytest.raises(errors.RangeError, match="cluster1 services 'x'"):
        ranges.cluster_ranges("cluster1", services="x")


def test_gateway_and_probe() -> None:
    r = ranges.parse("pods", "198.18.1.0/24")
    assert str(ranges.gateway(r)) == "198.18.1.1/24"
    assert str(ranges.probe_address(r)) == "198.18.1.254"


def test_parse_routes_skips_defaults_and_nexthops() -> None:
    got = [(str(r.net), r.dev) for r in ranges.parse_routes(MULTIPATH)]
    assert ("198.18.0.0/15", None) in got
    assert ("192.0.2.0/24", "eth0") in got
    assert not any(net.startswith("0.0.0.0") for net, _ in got)
    assert all("nexthop" not in r.line for r in ranges.parse_routes(MULTIPATH))
