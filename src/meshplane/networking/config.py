"""The networking config a push works from: every valid Gateway, VirtualService and DestinationRule.

The registry lists these objects (from the config cluster, as Istio does) and calls `build()`;
invalid objects are returned as errors (to log and count) and left out, so one bad object never
hides the others. The result goes into `PushContext.networking`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshplane.model import service
from meshplane.model.ids import DEFAULT_DOMAIN, Hostname
from meshplane.networking import destinationrule, errors, gateway, serviceentry, sidecar, virtualservice

log = logging.getLogger(__name__)

KINDS = ("Gateway", "VirtualService", "DestinationRule", "Sidecar", "ServiceEntry")


@dataclass(frozen=True, slots=True)
class NetworkingConfig:
    gateways: tuple[gateway.Gateway, ...] = ()
    virtual_services: tuple[virtualservice.VirtualService, ...] = ()
    # merged per (namespace, host) as Istio's mergeDestinationRule, in config order
    destination_rules: tuple[destinationrule.DestinationRule, ...] = ()
    root_namespace: str = "istio-system"
    sidecars: tuple[sidecar.Sidecar, ...] = ()  # config order (oldest first)
    service_entries: tuple[serviceentry.ServiceEntry, ...] = ()  # config order
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _Index.build(self))

    def with_entries(
        self, services: Mapping[Hostname, service.Service], shards: serviceentry.Shards
    ) -> tuple[Mapping[Hostname, service.Service], serviceentry.Shards]:
        """The registry's services and endpoint shards joined by those the ServiceEntries declare
        (serviceentry.services); a registry service of the same host wins."""
        if not self._index.entry_services:
            return services, shards
        return {**self._index.entry_services, **services}, {**self._index.entry_shards, **shards}

    def gateways_for(self, labels: Mapping[str, str]) -> tuple[gateway.Gateway, ...]:
        """Gateways whose selector picks a router proxy with these labels, in any namespace
        (Istio's PILOT_SCOPE_GATEWAY_TO_NAMESPACE defaults to false)."""
        return tuple(g for g in self.gateways if g.selects(labels))

    def virtual_services_for(self, gateway_key: str) -> tuple[virtualservice.VirtualService, ...]:
        """VirtualServices bound to the gateway `ns/name` and exported to its namespace."""
        gateway_ns = gateway_key.partition("/")[0]
        return tuple(
            vs for vs in self.virtual_services if gateway_key in vs.gateways and vs.visible_to(gateway_ns)
        )

    def sidecar_for(self, proxy_namespace: str, labels: Mapping[str, str]) -> sidecar.Sidecar | None:
        """The Sidecar that scopes a sidecar proxy (sidecar.select), None when none applies."""
        if not self.sidecars:
            return None
        return sidecar.select(self.sidecars, proxy_namespace, labels, self.root_namespace)

    def uses_source_labels(self) -> bool:
        """Whether some sidecar route depends on the proxy's labels (an HTTP match's sourceLabels)."""
        return self._index.source_labels

    def sidecar_virtual_service(
        self, host: str, proxy_namespace: str
    ) -> virtualservice.VirtualService | None:
        """The VirtualService that routes `host` for a sidecar in `proxy_namespace`: bound to `mesh`,
        visible to that namespace, with a host (short names resolved in its namespace) equal to `host`,
        else a wildcard covering it. Those private to the proxy's namespace (exportTo ".") come
        first, then the others in config order (push_context.go VirtualServicesForGateway); a later
        one for the same host is not merged (Istio merges only for gateways and delegates)."""
        exact = self._index.mesh_exact.get(host, ())
        wild = [
            (vs, names) for vs, names in self._index.mesh_wildcard if any(host.endswith(n[1:]) for n in names)
        ]
        for found in (exact, wild):
            visible = [vs for vs, _ in found if vs.visible_to(proxy_namespace)]
            if visible:
                private = [
                    vs
                    for vs in visible
                    if vs.namespace == proxy_namespace and "*" not in (vs.export_to or "*")
                ]
                return (private or visible)[0]
        return None

    def destination_rule(self, host: str, proxy_namespace: str) -> destinationrule.DestinationRule | None:
        """The rule a proxy in `proxy_namespace` applies to `host` (pilot/pkg/model/push_context.go
        `destinationRule`): a rule of the proxy's own namespace first, then one of the service's
        namespace exported to the proxy, then one of the root namespace; in each, an exact host
        before the most specific wildcard. Rules of any other namespace do not apply."""
        if not self.destination_rules:
            return None
        service_ns = host.split(".")[1] if host.count(".") >= 2 else ""
        for ns in dict.fromkeys((proxy_namespace, service_ns, self.root_namespace)):
            exact = self._index.rules_exact.get((ns, host))
            if exact is not None and exact.visible_to(proxy_namespace):
                return exact
            found = _most_specific(
                host, [d for d in self._index.rules_wildcard.get(ns, ()) if d.visible_to(proxy_namespace)]
            )
            if found is not None:
                return found
        return None


@dataclass(frozen=True, slots=True)
class _Index:
    """Lookups by host, built once per config (a push reads them per service and proxy)."""

    rules_exact: Mapping[tuple[str, str], destinationrule.DestinationRule]
    rules_wildcard: Mapping[str, tuple[destinationrule.DestinationRule, ...]]
    # VirtualServices bound to `mesh`, in config order, with their resolved hosts
    mesh_exact: Mapping[str, tuple[tuple[virtualservice.VirtualService, tuple[str, ...]], ...]]
    mesh_wildcard: tuple[tuple[virtualservice.VirtualService, tuple[str, ...]], ...]
    source_labels: bool
    entry_services: Mapping[Hostname, service.Service]
    entry_shards: serviceentry.Shards

    @staticmethod
    def build(cfg: NetworkingConfig) -> _Index:
        rules_exact: dict[tuple[str, str], destinationrule.DestinationRule] = {}
        rules_wildcard: dict[str, list[destinationrule.DestinationRule]] = {}
        for d in cfg.destination_rules:
            if d.host.startswith("*"):
                rules_wildcard.setdefault(d.namespace, []).append(d)
            else:
                rules_exact.setdefault((d.namespace, d.host), d)
        mesh_exact: dict[str, list[tuple[virtualservice.VirtualService, tuple[str, ...]]]] = {}
        mesh_wildcard = []
        for vs in cfg.virtual_services:
            if not vs.for_sidecars:
                continue
            names = vs.resolved_hosts()
            for h in dict.fromkeys(n for n in names if not n.startswith("*")):
                mesh_exact.setdefault(h, []).append((vs, names))
            wild = tuple(n for n in names if n.startswith("*"))
            if wild:
                mesh_wildcard.append((vs, wild))
        return _Index(
            rules_exact,
            {k: tuple(v) for k, v in rules_wildcard.items()},
            {k: tuple(v) for k, v in mesh_exact.items()},
            tuple(mesh_wildcard),
            any(m.source_labels for vs in cfg.virtual_services for r in vs.http for m in r.matches),
            *serviceentry.services(cfg.service_entries),
        )


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
    sidecars: list[sidecar.Sidecar] = []
    entries: list[serviceentry.ServiceEntry] = []
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
            elif kind == "Sidecar":
                sidecars.append(sidecar.parse(obj))
            elif kind == "ServiceEntry":
                entries.append(serviceentry.parse(obj))
            else:
                raise errors.ConfigError(str(kind), "kind", f"must be one of {', '.join(KINDS)}")
        except errors.ConfigError as e:
            problems.append(e)
    _warn_duplicate_defaults(sidecars)
    return (
        NetworkingConfig(
            tuple(gateways),
            tuple(services),
            _merge_rules(rules),
            root_namespace,
            tuple(sidecars),
            tuple(entries),
        ),
        problems,
    )


def _warn_duplicate_defaults(sidecars: list[sidecar.Sidecar]) -> None:
    """Istio allows one selector-less Sidecar per namespace; of several it uses the oldest and
    warns (pilot/pkg/model/push_context.go initSidecarScopes)."""
    first: dict[str, sidecar.Sidecar] = {}
    for s in sidecars:
        if s.selector:
            continue
        kept = first.setdefault(s.namespace, s)
        if kept is not s:
            log.warning(
                "more than one Sidecar without workloadSelector in %s: using %s, ignoring %s",
                s.namespace,
                kept.key,
                s.key,
            )
