"""The networking config a push works from: every valid Gateway, VirtualService and DestinationRule.

The registry lists these objects (from the config cluster, as Istio does) and calls `build()`;
invalid objects are returned as errors (to log and count) and left out, so one bad object never
hides the others. The result goes into `PushContext.networking`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.model.ids import DEFAULT_DOMAIN
from meshplane.networking import destinationrule, errors, gateway, virtualservice

log = logging.getLogger(__name__)

KINDS = ("Gateway", "VirtualService", "DestinationRule")


@dataclass(frozen=True, slots=True)
class NetworkingConfig:
    gateways: tuple[gateway.Gateway, ...] = ()
    virtual_services: tuple[virtualservice.VirtualService, ...] = ()
    # merged per (namespace, host) as Istio's mergeDestinationRule, in config order
    destination_rules: tuple[destinationrule.DestinationRule, ...] = ()
    root_namespace: str = "istio-system"

    def gateways_for(self, labels: Mapping[str, str]) -> tuple[gateway.Gateway, ...]:
        """Gateways whose selector picks a router proxy with these labels, in any namespace
        (Istio's PILOT_SCOPE_GATEWAY_TO_NAMESPACE defaults to false)."""
        return tuple(g for g in self.gateways if g.selects(labels))

    def virtual_services_for(self, gateway_key: str) -> tuple[virtualservice.VirtualService, ...]:
        return tuple(vs for vs in self.virtual_services if gateway_key in vs.gateways)

    def uses_source_labels(self) -> bool:
        """Whether some sidecar route depends on the proxy's labels (an HTTP match's sourceLabels)."""
        return any(m.source_labels for vs in self.virtual_services for r in vs.http for m in r.matches)

    def destination_rule(self, host: str, proxy_namespace: str) -> destinationrule.DestinationRule | None:
        """The rule a proxy in `proxy_namespace` applies to `host` (pilot/pkg/model/push_context.go
        `destinationRule`): a rule of the proxy's own namespace first, then one of the service's
        namespace exported to the proxy, then one of the root namespace; in each, an exact host
        before the most specific wildcard. Rules of any other namespace do not apply."""
        service_ns = host.split(".")[1] if host.count(".") >= 2 else ""
        for ns in dict.fromkeys((proxy_namespace, service_ns, self.root_namespace)):
            found = _most_specific(
                host,
                [d for d in self.destination_rules if d.namespace == ns and d.visible_to(proxy_namespace)],
            )
            if found is not None:
                return found
        return None


def _most_specific(
    host: str, rules: list[destinationrule.DestinationRule]
) -> destinationrule.DestinationRule | None:
    """pilot/pkg/model/config.go MostSpecificHostMatch: an exact name, else the longest wildcard."""
    best = None
    for d in rules:
        if d.host == host:
            return d
        if (
            d.host.startswith("*")
            and host.endswith(d.host[1:])
            and (best is None or len(d.host) > len(best.host))
        ):
            best = d
    return best


def _merge_rules(rules: list[destinationrule.DestinationRule]) -> tuple[destinationrule.DestinationRule, ...]:
    """Istio's mergeDestinationRule (pilot/pkg/model/destination_rule.go): rules of one namespace for
    one host become one; subsets are added (a later subset with a taken name is dropped) and the
    first rule's traffic policy wins (a later one applies only when the first has none)."""
    merged: dict[tuple[str, str], destinationrule.DestinationRule] = {}
    for d in rules:
        key = (d.namespace, d.host)
        first = merged.get(key)
        if first is None:
            merged[key] = d
            continue
        names = {s.name for s in first.subsets}
        extra = tuple(s for s in d.subsets if s.name not in names)
        for s in d.subsets:
            if s.name in names:
                log.warning("duplicate subset ignored rule=%s subset=%s host=%s", d.key, s.name, d.host)
        merged[key] = dataclasses.replace(
            first, subsets=first.subsets + extra, traffic_policy=first.traffic_policy or d.traffic_policy
        )
    return tuple(merged.values())


def _sort_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    # Istio orders config by creation time, then namespace/name; the first of two conflicting wins.
    md = obj.get("metadata") if isinstance(obj, Mapping) else None
    md = md if isinstance(md, Mapping) else {}
    return (str(md.get("creationTimestamp") or ""), str(md.get("namespace") or ""), str(md.get("name") or ""))


def build(
    objects: Iterable[Mapping[str, Any]], domain: str = DEFAULT_DOMAIN, root_namespace: str = "istio-system"
) -> tuple[NetworkingConfig, list[errors.ConfigError]]:
    gateways: list[gateway.Gateway] = []
    services: list[virtualservice.VirtualService] = []
    rules: list[destinationrule.DestinationRule] = []
    problems: list[errors.ConfigError] = []
    for obj in sorted(objects, key=_sort_key):
        kind = obj.get("kind") if isinstance(obj, Mapping) else None
        try:
            if kind == "Gateway":
                gateways.append(gateway.parse(obj))
            elif kind == "VirtualService":
                services.append(virtualservice.parse(obj, domain=domain))
            elif kind == "DestinationRule":
                rules.append(destinationrule.parse(obj, domain=domain))
            else:
                raise errors.ConfigError(str(kind), "kind", f"must be one of {', '.join(KINDS)}")
        except errors.ConfigError as e:
            problems.append(e)
    return NetworkingConfig(tuple(gateways), tuple(services), _merge_rules(rules), root_namespace), problems
