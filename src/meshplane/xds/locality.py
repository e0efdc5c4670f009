"""Locality load balancing: EDS priorities and weights relative to the calling proxy's locality.

As Istio's pilot/pkg/networking/core/loadbalancer/loadbalancer.go:
- the setting is the DestinationRule's `loadBalancer.localityLbSetting` if given (`enabled: false`
  turns it off), else the mesh's (`GetLocalityLbSetting`); Istio's default mesh config has it
  enabled with nothing else set, and meshplane's mesh config has no `localityLbSetting`, so that
  default applies;
- `distribute` re-weights the localities for proxies whose locality matches `from` and empties the
  localities no `to` entry names (`applyLocalityWeights`);
- otherwise, only for a cluster with outlierDetection (else Envoy never leaves priority 0):
  `failoverPriority` splits each locality by how many of the labels (proxy's value, or a `key=value`
  override) the endpoint shares, in order (`applyFailoverPriorities`), and the region/zone/subzone
  priority (0 same subzone, 1 same zone, 2 same region, 3 other, 4 a region that `failover` does
  not name for the proxy's region) is applied when `failoverPriority` is empty or `failover` is
  given (`applyLocalityFailover`); priorities are compacted to 0..N.
Labels compared by failoverPriority are augmented with the topology labels as Istio's
pilot/pkg/serviceregistry/util/label AugmentLabels does (region, zone, subzone, cluster, network).
The cluster side (`LocalityWeightedLbConfig`) is in trafficpolicy.apply_locality_lb.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2
from google.protobuf import wrappers_pb2

from meshplane.model import endpoint
from meshplane.model.ids import ClusterId
from meshplane.networking import destinationrule as dr

MESH_DEFAULT = dr.LocalityLbSetting(enabled=True)  # Istio's default meshConfig.localityLbSetting
LABEL_REGION = "topology.kubernetes.io/region"
LABEL_ZONE = "topology.kubernetes.io/zone"
LABEL_SUBZONE = "topology.istio.io/subzone"
LABEL_CLUSTER = "topology.istio.io/cluster"
LABEL_NETWORK = "topology.istio.io/network"


@dataclass(frozen=True, slots=True)
class Setting:
    """What one cluster's EDS for one proxy depends on (part of the EDS cache key)."""

    lb: dr.LocalityLbSetting
    failover: bool  # the cluster has outlierDetection
    locality: endpoint.Locality  # the proxy's
    labels: tuple[tuple[str, str], ...] = ()  # the proxy's augmented labels, for failoverPriority


def effective(
    mesh_setting: dr.LocalityLbSetting | None, rule: dr.LocalityLbSetting | None
) -> dr.LocalityLbSetting | None:
    """Istio's GetLocalityLbSetting: the rule's setting wins over the mesh's, whole."""
    chosen = rule if rule is not None else mesh_setting
    if chosen is None or chosen.enabled is False:
        return None
    return chosen


def augmented(
    labels: Mapping[str, str], loc: endpoint.Locality, cluster_id: str, network: str
) -> dict[str, str]:
    out = dict(labels)
    for key, value in (
        (LABEL_REGION, loc.region),
        (LABEL_ZONE, loc.zone),
        (LABEL_SUBZONE, loc.subzone),
        (LABEL_CLUSTER, cluster_id),
        (LABEL_NETWORK, network),
    ):
        if value:
            out[key] = value
    return out


def for_cluster(
    policy: dr.Policy,
    proxy_locality: endpoint.Locality,
    proxy_labels: Mapping[str, str],
    mesh_setting: dr.LocalityLbSetting | None = MESH_DEFAULT,
) -> Setting | None:
    """The setting for a cluster built from `policy`; None when it changes nothing."""
    rule = policy.load_balancer.locality_lb if policy.load_balancer is not None else None
    lb = effective(mesh_setting, rule)
    failover = policy.outlier_detection is not None
    if lb is None or not (lb.distribute or failover):
        return None
    labels = tuple(sorted(proxy_labels.items())) if lb.failover_priority and not lb.distribute else ()
    return Setting(lb, failover, proxy_locality, labels)


def _match(loc: endpoint.Locality, rule: str) -> bool:
    """Istio's util.LocalityMatch: `region/zone/subzone`, `*` or a missing part matches anything."""
    region, zone, subzone = [*rule.split("/"), "", ""][:3]
    return (
        (region == "*" or loc.region == region)
        and (zone in ("*", "") or loc.zone == zone)
        and (subzone in ("*", "") or loc.subzone == subzone)
    )


def lb_priority(proxy: endpoint.Locality, ep: endpoint.Locality) -> int:
    """Istio's util.LbPriority."""
    if proxy.region != ep.region:
        return 3
    if proxy.zone != ep.zone:
        return 2
    return 0 if proxy.subzone == ep.subzone else 1


Group = tuple[endpoint.Locality, list[tuple[endpoint.Endpoint, endpoint_components_pb2.LbEndpoint]]]


def group(
    loc: endpoint.Locality,
    members: Sequence[tuple[endpoint.Endpoint, endpoint_components_pb2.LbEndpoint]],
    priority: int = 0,
) -> endpoint_components_pb2.LocalityLbEndpoints:
    return endpoint_components_pb2.LocalityLbEndpoints(
        locality=base_pb2.Locality(region=loc.region, zone=loc.zone, sub_zone=loc.subzone),
        lb_endpoints=[lb for _, lb in members],
        load_balancing_weight=wrappers_pb2.UInt32Value(
            value=sum(lb.load_balancing_weight.value or 1 for _, lb in members)
        ),
        priority=priority,
    )


def _compact(groups: list[endpoint_components_pb2.LocalityLbEndpoints]) -> None:
    order = {p: i for i, p in enumerate(sorted({g.priority for g in groups}))}
    for g in groups:
        g.priority = order[g.priority]


def _weights(s: Setting, groups: list[Group], out: list[endpoint_components_pb2.LocalityLbEndpoints]) -> None:
    """applyLocalityWeights: the first `distribute` entry whose `from` matches the proxy."""
    for d in s.lb.distribute:
        if not _match(s.locality, d.source):
            continue
        unmatched = set(range(len(groups)))
        for rule, weight in d.to:
            matched = [i for i in sorted(unmatched) if _match(groups[i][0], rule)]
            unmatched -= set(matched)
            total = sum(out[i].load_balancing_weight.value for i in matched)
            for i in matched:
                value = out[i].load_balancing_weight.value * weight / total
                if value > 0:
                    out[i].load_balancing_weight.value = math.ceil(value)
        for i in unmatched:
            del out[i].lb_endpoints[:]
        return


def _failover_priorities(
    s: Setting, groups: list[Group]
) -> list[endpoint_components_pb2.LocalityLbEndpoints]:
    """applyFailoverPriorities: split each locality by the first failoverPriority label that differs."""
    proxy_labels = dict(s.labels)
    keys = [p.split("=", 1)[0] for p in s.lb.failover_priority]
    overrides = dict(p.split("=", 1) for p in s.lb.failover_priority if "=" in p)
    lowest = len(keys)
    out = []
    for loc, members in groups:
        by_priority: dict[int, list[tuple[endpoint.Endpoint, endpoint_components_pb2.LbEndpoint]]] = {}
        for ep, lb in members:
            ep_labels = augmented(ep.labels, ep.locality, ep.cluster_id, ep.network)
            priority = 0
            for j, key in enumerate(keys):
                if overrides.get(key, proxy_labels.get(key)) != ep_labels.get(key):
                    priority = lowest - j
                    break
            by_priority.setdefault(priority, []).append((ep, lb))
        out += [group(loc, by_priority[p], p) for p in sorted(by_priority)]
    _compact(out)
    return out


def _locality_failover(s: Setting, out: list[endpoint_components_pb2.LocalityLbEndpoints]) -> None:
    """applyLocalityFailover: priority*5 + the region/zone/subzone priority, compacted."""
    for g in out:
        loc = endpoint.Locality(g.locality.region, g.locality.zone, g.locality.sub_zone)
        priority = lb_priority(s.locality, loc)
        if priority == 3:
            for src, dst in s.lb.failover:
                if src == s.locality.region:
                    if loc.region != dst:
                        priority = 4
                    break
        g.priority = g.priority * 5 + priority
    _compact(out)


def apply(s: Setting, groups: list[Group]) -> list[endpoint_components_pb2.LocalityLbEndpoints]:
    """Istio's ApplyLocalityLoadBalancer over the locality groups of one ClusterLoadAssignment."""
    if s.lb.distribute:
        out = [group(loc, members) for loc, members in groups]
        _weights(s, groups, out)
        return out
    if not s.failover:
        return [group(loc, members) for loc, members in groups]
    if s.lb.failover_priority:
        if not s.labels or not groups:
            out = [group(loc, members) for loc, members in groups]
        else:
            out = _failover_priorities(s, groups)
        if s.lb.failover:
            _locality_failover(s, out)
        return out
    out = [group(loc, members) for loc, members in groups]
    _locality_failover(s, out)
    return out


def by_address(
    endpoints: Mapping[Any, Mapping[ClusterId, Sequence[endpoint.Endpoint]]],
) -> dict[tuple[ClusterId, str], endpoint.Locality]:
    """(cluster, address) → locality of every endpoint: a proxy's own locality, as istiod takes it
    from the proxy's first service target (pilot/pkg/xds/ads.go initializeProxy) before the node's."""
    out: dict[tuple[ClusterId, str], endpoint.Locality] = {}
    for shards in endpoints.values():
        for cid, eps in shards.items():
            for ep in eps:
                out.setdefault((cid, ep.address), ep.locality)
    return out
