"""A sidecar proxy's Sidecar scope: the snapshot it is generated from, and the cache view it uses.

Istio builds a SidecarScope per Sidecar (pilot/pkg/model/sidecar.go ConvertToSidecarScope) and
generates a proxy's outbound clusters, listeners and routes only from the services it imports;
its `outboundTrafficPolicy` replaces the mesh's. Here `scoped()` returns the push snapshot with
`services` restricted to the imported ones and the mesh's outbound policy replaced; the generator
runs unchanged over it. The inbound side (the proxy's own service ports) is not scoped: it reads
`unscoped(ctx)`.

Two proxies with different scopes must never share a cached result: `KeyedCache` puts the Sidecar's
key in front of every cache key the generator uses for a scoped proxy (resources and derived
values), so a scoped proxy's result is shared only with proxies of the same Sidecar.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf import message

from meshplane.model import mesh, service
from meshplane.model.ids import Hostname
from meshplane.networking import config as networking_config
from meshplane.networking import sidecar
from meshplane.policy import config as policy_config
from meshplane.xds import cache, resources, snapshot

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scoped:
    """The push snapshot as one Sidecar sees it (satisfies snapshot.Snapshot)."""

    full: snapshot.Snapshot
    sidecar: sidecar.Sidecar
    services: Mapping[Hostname, service.Service]
    mesh: mesh.MeshConfig

    @property
    def version(self) -> str:
        return self.full.version

    @property
    def endpoints(self) -> Mapping[Hostname, snapshot.Shards]:
        return self.full.endpoints

    @property
    def networking(self) -> networking_config.NetworkingConfig:
        return self.full.networking

    @property
    def policy(self) -> policy_config.PolicyConfig:
        return self.full.policy


def scoped(ctx: snapshot.Snapshot, sc: sidecar.Sidecar) -> Scoped:
    services = {h: s for h, s in ctx.services.items() if sc.imports(h, s.namespace)}
    m = ctx.mesh
    if sc.outbound_traffic_policy is not None:
        m = dataclasses.replace(m, outbound_traffic_policy=sc.outbound_traffic_policy)
    return Scoped(ctx, sc, services, m)


def scope_key(sc: sidecar.Sidecar) -> Hashable:
    """What the generated resources depend on (not the selector: it only picks the proxies)."""
    return (sc.namespace, sc.name, sc.egress_hosts, sc.outbound_traffic_policy)


def unscoped(ctx: snapshot.Snapshot) -> snapshot.Snapshot:
    return ctx.full if isinstance(ctx, Scoped) else ctx


class KeyedCache(cache.ResourceCache):
    """The shared cache with every key prefixed by a scope key (the Sidecar's identity)."""

    def __init__(self, inner: cache.ResourceCache, scope: Hashable) -> None:
        self._inner = inner
        self._scope = scope
        self.stats = inner.stats

    def resource(
        self, version: str, key: Hashable, deps: cache.Deps, build: Callable[[], tuple[str, message.Message]]
    ) -> resources.Resource:
        return self._inner.resource(version, ("scope", self._scope, key), deps, build)

    def derived(self, version: str, key: Hashable, build: Callable[[], T]) -> T:
        return self._inner.derived(version, ("scope", self._scope, key), build)

    def versions(self) -> tuple[str, ...]:
        return self._inner.versions()
