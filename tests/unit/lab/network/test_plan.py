"""The lab's network plan: ranges per cluster, overrides, the file the node runtimes read."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.lab import errors
from meshplane.lab.network import plan


def test_defaults_bridges_and_gateways_and_round_trip(tmp_path: Path) -> None:
    p = plan.make("abc123", ("cluster1", "cluster2"), {"cluster2": {"pods": "198.18.200.0/24"}})
    c1, c2 = p.cluster("cluster1"), p.cluster("cluster2")
    assert (c1.bridge, c2.bridge) == ("mp-abc123-b1", "mp-abc123-b2")
    assert (c1.gateway, str(c2.ranges.pods.net)) == ("198.18.1.1", "198.18.200.0/24")
    plan.save(tmp_path / "network.json", p)
    assert plan.load(tmp_path / "network.json") == p


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cluster3": {"pods": "198.18.30.0/24"}}, "names cluster 'cluster3'"),
        (
            {"cluster1": {"nodes": "198.18.30.0/24"}},
            r"cluster1\.nodes: the kinds are pods, services, loadBalancers",
        ),
        ({"cluster1": {"pods": "198.18.2.0/24"}}, "cluster1 pods 198.18.2.0/24 overlaps cluster2 pods"),
        ({"cluster1": {"services": "not-a-range"}}, "cluster1 services 'not-a-range' is not a network"),
        ({"cluster1": {"pods": "2001:db8::/64"}}, "is not IPv4"),
    ],
)
def test_bad_ranges_are_refused_naming_them(overrides: dict[str, dict[str, str]], message: str) -> None:
    with pytest.raises(errors.RangeError, match=message):
        plan.make("abc123", ("cluster1", "cluster2"), overrides)


def test_override_syntax_and_unreadable_plans(tmp_path: Path) -> None:
    assert plan.parse_override("cluster1.pods=198.18.9.0/24") == ("cluster1", "pods", "198.18.9.0/24")
    for bad in ("cluster1=198.18.9.0/24", "cluster1.pods", ".pods=x"):
        with pytest.raises(errors.RangeError, match=r"expected CLUSTER\.KIND=CIDR"):
            plan.parse_override(bad)
    (tmp_path / "bad.json").write_text('{"labId": "abc123", "clusters": {"cluster1": {"pods": "x"}}}')
    with pytest.raises(errors.RangeError, match=r"network plan .*bad\.json is not readable"):
        plan.load(tmp_path / "bad.json")
