"""The lab's network plan: its id, and per cluster its ranges and bridge; a JSON file under the lab's
folder that `lab up` writes and every node runtime reads (`lab node --network-plan FILE`).

    {"labId": "a1b2c3",
     "clusters": {"cluster1": {"pods": "198.18.1.0/24", "services": "198.18.11.0/24",
                               "loadBalancers": "198.18.21.0/24", "bridge": "mp-a1b2c3-b1"}, …}}

Each cluster's API server listens on its pod range's gateway address (the node's address, on the
cluster's bridge), so pods reach it (and the other cluster's, as the guide's control plane does)
through their gateway, as pods reach a real API server through the node.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshplane.lab import errors
from meshplane.lab.network import names, ranges

KINDS = ("pods", "services", "loadBalancers")


@dataclass(frozen=True, slots=True)
class ClusterNet:
    ranges: ranges.ClusterRanges
    bridge: str

    @property
    def gateway(self) -> str:
        """The node's address: the pod range's gateway, on the bridge."""
        return str(ranges.gateway(self.ranges.pods).ip)


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    lab_id: str
    clusters: tuple[ClusterNet, ...]

    def cluster(self, name: str) -> ClusterNet:
        for c in self.clusters:
            if c.ranges.cluster == name:
                return c
        raise errors.RangeError(f"the network plan has no cluster {name!r}")

    def every_range(self) -> list[ranges.Range]:
        return [r for c in self.clusters for r in c.ranges.all()]

    def to_json(self) -> dict[str, object]:
        return {
            "labId": self.lab_id,
            "clusters": {
                c.ranges.cluster: {
                    "pods": str(c.ranges.pods.net),
                    "services": str(c.ranges.services.net),
                    "loadBalancers": str(c.ranges.load_balancers.net),
                    "bridge": c.bridge,
                }
                for c in self.clusters
            },
        }


def make(lab_id: str, clusters: Sequence[str], overrides: Mapping[str, Mapping[str, str]]) -> NetworkPlan:
    """A plan for `clusters` (bridges `mp-LABID-b1`, `-b2`, …), each range its default unless
    `overrides[cluster][kind]` gives one; RangeError for a bad or overlapping range, or an override
    naming a cluster or kind the lab does not have."""
    for cluster, kinds in overrides.items():
        if cluster not in clusters:
            raise errors.RangeError(f"--range names cluster {cluster!r}; the lab has {', '.join(clusters)}")
        for kind in kinds:
            if kind not in KINDS:
                raise errors.RangeError(f"--range {cluster}.{kind}: the kinds are {', '.join(KINDS)}")
    out = []
    for n, cluster in enumerate(clusters, 1):
        o = overrides.get(cluster, {})
        r = ranges.cluster_ranges(cluster, o.get("pods"), o.get("services"), o.get("loadBalancers"))
        out.append(ClusterNet(r, names.bridge(lab_id, f"b{n}")))
    plan = NetworkPlan(names.lab(lab_id), tuple(out))
    ranges.validate(plan.every_range(), "")  # no two of the lab's ranges overlap
    return plan


def parse_override(text: str) -> tuple[str, str, str]:
    """`CLUSTER.KIND=CIDR` → (cluster, kind, cidr); RangeError names the text otherwise."""
    key, sep, cidr = text.partition("=")
    cluster, dot, kind = key.partition(".")
    if not sep or not dot or not cluster or not cidr:
        raise errors.RangeError(f"--range {text!r}: expected CLUSTER.KIND=CIDR (kinds: {', '.join(KINDS)})")
    return cluster, kind, cidr


def save(path: Path, plan: NetworkPlan) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(plan.to_json(), indent=2) + "\n")
    os.replace(tmp, path)


def load(path: Path) -> NetworkPlan:
    """The plan in `path`; RangeError naming the file and the problem when it is not one."""
    try:
        raw = json.loads(path.read_text())
        clusters = []
        for name, c in raw["clusters"].items():
            r = ranges.cluster_ranges(name, c["pods"], c["services"], c["loadBalancers"])
            clusters.append(ClusterNet(r, names.ifname(str(c["bridge"]))))
        return NetworkPlan(names.lab(str(raw["labId"])), tuple(clusters))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise errors.RangeError(f"network plan {path} is not readable: {e!r}") from e
