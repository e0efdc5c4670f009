"""A connected proxy, as described by its Envoy node id and Istio node metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from meshplane.model.endpoint import Locality
from meshplane.model.ids import ClusterId, ProxyId

_EMPTY: Mapping[str, str] = MappingProxyType({})


class ProxyType(StrEnum):
    SIDECAR = "sidecar"
    ROUTER = "router"


@dataclass(frozen=True, slots=True)
class Proxy:
    id: ProxyId
    type: ProxyType
    ip_addresses: tuple[str, ...]
    pod_name: str
    namespace: str
    dns_domain: str
    cluster_id: ClusterId
    network: str = ""
    mesh_id: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    service_account: str = ""
    requested_network_view: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    # the Envoy node's locality (the agent's); istiod prefers the proxy's own endpoint's locality
    locality: Locality = field(default_factory=Locality)

    @property
    def ip(self) -> str:
        return self.ip_addresses[0] if self.ip_addresses else ""
