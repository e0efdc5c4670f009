"""What a push works from: an immutable snapshot of the mesh, and the request that triggered it.

The registry implements `ConfigSource`; the push queue asks it for a snapshot when a debounced
push starts, so generators never see a half-applied change. Generators are pure functions of
(proxy, PushContext).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from meshplane.model import endpoint, mesh, service
from meshplane.model.ids import ClusterId, Hostname
from meshplane.networking import config as networking_config
from meshplane.policy import config as policy_config
from meshplane.push import propagation

# hostname -> cluster -> that cluster's endpoints for the hostname (Istio's endpoint shards)
EndpointShards = Mapping[Hostname, Mapping[ClusterId, tuple[endpoint.Endpoint, ...]]]


@dataclass(frozen=True, slots=True)
class PushContext:
    version: str
    mesh: mesh.MeshConfig
    services: Mapping[Hostname, service.Service]
    endpoints: EndpointShards
    # Gateway and VirtualService objects, built by `networking.config.build()` from the config cluster
    networking: networking_config.NetworkingConfig = field(default_factory=networking_config.NetworkingConfig)
    # PeerAuthentication (security.istio.io) objects, built by `policy.config.build()`
    policy: policy_config.PolicyConfig = field(default_factory=policy_config.PolicyConfig)
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PushRequest:
    """One (possibly merged) reason to push. `full=False` means only EDS for `eds_hosts`."""

    full: bool
    eds_hosts: frozenset[Hostname] = frozenset()
    reasons: frozenset[str] = frozenset()
    # loop time of the first event merged into this request (for pilot_proxy_convergence_time)
    start: float = 0.0
    # the first change per cluster merged into this request, as the watches saw it
    # (meshplane_config_propagation_seconds, push/propagation.py)
    origins: tuple[propagation.Origin, ...] = ()

    def merge(self, other: PushRequest) -> PushRequest:
        return PushRequest(
            full=self.full or other.full,
            eds_hosts=self.eds_hosts | other.eds_hosts,
            reasons=self.reasons | other.reasons,
            start=min(x for x in (self.start, other.start) if x) if (self.start or other.start) else 0.0,
            origins=tuple(propagation.earliest_per_cluster(self.origins + other.origins)),
        )


class ConfigSource(Protocol):
    def snapshot(self, version: str) -> PushContext:
        """Build the immutable view of the mesh for a push (cheap: shares unchanged parts)."""
        ...
