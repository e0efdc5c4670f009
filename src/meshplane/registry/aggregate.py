"""The aggregate registry: one view per hostname across every cluster.

Registries are ordered (the config cluster first, then remotes in the order they were added); the
first registry that has a Service defines its ports. Endpoints are kept as per-cluster shards, so a
cluster is added, swapped or removed by replacing its shard and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from meshplane.model import endpoint as ep
from meshplane.model import ids
from meshplane.model import mesh as mesh_mod
from meshplane.model import service as svc_model
from meshplane.registry import cluster as cluster_mod
from meshplane.registry import convert

log = logging.getLogger(__name__)


class ServiceView(Protocol):
    """What the aggregate reads from a cluster's registry."""

    @property
    def cluster_id(self) -> ids.ClusterId: ...
    @property
    def services(self) -> Mapping[ids.Hostname, svc_model.Service]: ...
    @property
    def endpoints(self) -> Mapping[ids.Hostname, tuple[ep.Endpoint, ...]]: ...


# (full, hostnames whose endpoints changed, reason): the composition root turns it into a push request
ChangeFn = Callable[[bool, frozenset[ids.Hostname], str], None]


class Aggregate:
    def __init__(self, mesh_config: mesh_mod.MeshConfig, on_change: ChangeFn) -> None:
        self._mesh = mesh_config
        self._push = on_change
        self._registries: dict[ids.ClusterId, ServiceView] = {}
        self._services: dict[ids.Hostname, svc_model.Service] = {}
        # copy-on-write: each inner mapping is replaced, never mutated, so snapshots stay immutable
        self._shards: dict[ids.Hostname, Mapping[ids.ClusterId, tuple[ep.Endpoint, ...]]] = {}

    # --- registries ------------------------------------------------------------------------------

    @property
    def clusters(self) -> list[ids.ClusterId]:
        return list(self._registries)

    def registry(self, cluster_id: ids.ClusterId) -> ServiceView | None:
        return self._registries.get(cluster_id)

    def add(self, registry: ServiceView) -> None:
        """Add a cluster, or swap in a replacement for the same cluster id in place (keeping its order)."""
        old = self._registries.get(registry.cluster_id)
        self._registries[registry.cluster_id] = registry
        hosts_s = set(registry.services) | (set(old.services) if old else set())
        hosts_e = set(registry.endpoints) | (set(old.endpoints) if old else set())
        self._refresh(
            registry.cluster_id, cluster_mod.Change(services=hosts_s, endpoints=hosts_e), "ClusterUpdate"
        )

    def remove(self, cluster_id: ids.ClusterId, registry: ServiceView | None = None) -> None:
        """Remove a cluster (only if `registry` is still the one registered, when given)."""
        current = self._registries.get(cluster_id)
        if current is None or (registry is not None and current is not registry):
            return
        del self._registries[cluster_id]
        change = cluster_mod.Change(services=set(current.services), endpoints=set(current.endpoints))
        self._refresh(cluster_id, change, "ClusterUpdate", force_full=True)

    def on_change(self, registry: ServiceView, change: cluster_mod.Change) -> None:
        """Handler given to each ClusterRegistry; ignored unless that registry is the one registered
        (a replacement that is still syncing, or an old one being stopped, must not leak in)."""
        if self._registries.get(registry.cluster_id) is registry:
            self._refresh(registry.cluster_id, change, "")

    # --- config from the config cluster ----------------------------------------------------------

    @property
    def mesh(self) -> mesh_mod.MeshConfig:
        return self._mesh

    def set_mesh(self, mesh_config: mesh_mod.MeshConfig) -> None:
        if mesh_config != self._mesh:
            self._mesh = mesh_config
            self._services = {h: self._merged(h) for h in self._services}
            self._push(True, frozenset(), "MeshConfig")

    # --- merging ---------------------------------------------------------------------------------

    def _merged(self, host: ids.Hostname) -> svc_model.Service:
        views = [r.services[host] for r in self._registries.values() if host in r.services]
        merged = convert.merge_services(views)
        local = self._mesh.is_cluster_local(host)
        if merged.cluster_local != local:
            merged = svc_model.Service(
                hostname=merged.hostname,
                name=merged.name,
                namespace=merged.namespace,
                ports=merged.ports,
                cluster_vips=merged.cluster_vips,
                service_accounts=merged.service_accounts,
                labels=merged.labels,
                external_name=merged.external_name,
                cluster_local=local,
            )
        return merged

    def _refresh(
        self, cluster_id: ids.ClusterId, change: cluster_mod.Change, reason: str, force_full: bool = False
    ) -> None:
        for host in change.services:
            if any(host in r.services for r in self._registries.values()):
                self._services[host] = self._merged(host)
            else:
                self._services.pop(host, None)
        eds_changed: set[ids.Hostname] = set()
        sa_changed = False
        for host in change.endpoints:
            shards: dict[ids.ClusterId, tuple[ep.Endpoint, ...]] = {}
            for cid, reg in self._registries.items():
                endpoints = reg.endpoints.get(host)
                if endpoints:
                    shards[cid] = endpoints
            old = self._shards.get(host)
            if shards:
                if old is None or dict(old) != shards:
                    self._shards[host] = MappingProxyType(shards)
                    eds_changed.add(host)
            elif old is not None:
                del self._shards[host]
                eds_changed.add(host)
            if host in eds_changed and _identities(old) != _identities(shards):
                sa_changed = True  # the SANs clusters verify come from the endpoints' service accounts
        full = force_full or bool(change.services) or sa_changed
        if full or eds_changed:
            why = reason or ("ServiceUpdate" if change.services else "EndpointUpdate")
            self._push(full, frozenset(eds_changed), why)

    # --- snapshot --------------------------------------------------------------------------------

    def services(self) -> Mapping[ids.Hostname, svc_model.Service]:
        """An immutable copy of the merged services (cheap: the values are shared)."""
        return MappingProxyType(dict(self._services))

    def shards(self) -> Mapping[ids.Hostname, Mapping[ids.ClusterId, tuple[ep.Endpoint, ...]]]:
        """An immutable copy of the endpoint shards (inner mappings are replaced, never mutated)."""
        return MappingProxyType(dict(self._shards))

    # --- debug -----------------------------------------------------------------------------------

    def registryz(self) -> list[dict[str, Any]]:
        """`/debug/registryz`: every service with its endpoints per cluster."""
        out: list[dict[str, Any]] = []
        for host in sorted(set(self._services) | set(self._shards)):
            s = self._services.get(host)
            out.append(
                {
                    "hostname": host,
                    "namespace": s.namespace if s else "",
                    "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol.value} for p in s.ports]
                    if s
                    else [],
                    "clusterVIPs": {c: list(v) for c, v in s.cluster_vips.items()} if s else {},
                    "clusterLocal": bool(s and s.cluster_local),
                    "endpoints": {
                        cid: [
                            {
                                "address": e.address,
                                "ports": dict(e.ports),
                                "health": e.health.value,
                                "network": e.network,
                                "locality": e.locality.label,
                                "serviceAccount": e.service_account,
                                "workload": e.workload_name,
                                "tlsMode": e.tls_mode,
                            }
                            for e in eps
                        ]
                        for cid, eps in self._shards.get(host, {}).items()
                    },
                }
            )
        return out


def _identities(shards: Mapping[ids.ClusterId, tuple[ep.Endpoint, ...]] | None) -> frozenset[tuple[str, str]]:
    if not shards:
        return frozenset()
    return frozenset(
        (e.namespace, e.service_account) for eps in shards.values() for e in eps if e.service_account
    )
