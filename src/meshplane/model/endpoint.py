"""A service endpoint as the mesh sees it, tagged with the cluster and network it lives in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from meshplane.model.ids import ClusterId

_EMPTY: Mapping[str, str] = MappingProxyType({})


class Health(StrEnum):
    HEALTHY = "HEALTHY"  # ready
    UNHEALTHY = "UNHEALTHY"  # not ready, not terminating
    DRAINING = "DRAINING"  # terminating (serving or not)


@dataclass(frozen=True, slots=True)
class Locality:
    region: str = ""
    zone: str = ""
    subzone: str = ""

    @property
    def label(self) -> str:
        return "/".join(x for x in (self.region, self.zone, self.subzone) if x) if self.region else ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    # service port name -> the port on this endpoint (from the EndpointSlice's ports)
    ports: Mapping[str, int]
    cluster_id: ClusterId
    network: str = ""
    locality: Locality = Locality()
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    service_account: str = ""
    namespace: str = ""
    workload_name: str = ""  # the pod name, when there is one
    health: Health = Health.HEALTHY
    # "istio" when the workload has a sidecar (mTLS capable), "" otherwise
    tls_mode: str = ""
