"""A mesh service: one hostname, merged from the Service objects of every cluster that has it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from meshplane.model.ids import ClusterId, Hostname

_EMPTY: Mapping[str, str] = MappingProxyType({})


class Protocol(StrEnum):
    """Istio's protocol of a service port, from its name prefix or appProtocol."""

    HTTP = "HTTP"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    HTTPS = "HTTPS"
    TLS = "TLS"
    TCP = "TCP"
    UDP = "UDP"
    # no protocol declared (an unnamed port, an unknown prefix): sidecars detect HTTP by sniffing
    UNSUPPORTED = "UNSUPPORTED"

    @property
    def is_http(self) -> bool:
        return self in (Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC)


_PREFIXES: dict[str, Protocol] = {
    "http": Protocol.HTTP,
    "http2": Protocol.HTTP2,
    "grpc": Protocol.GRPC,
    "grpc-web": Protocol.HTTP,
    "h2c": Protocol.HTTP2,
    "https": Protocol.HTTPS,
    "tls": Protocol.TLS,
    "tcp": Protocol.TCP,
    "mongo": Protocol.TCP,
    "mysql": Protocol.TCP,
    "redis": Protocol.TCP,
    "udp": Protocol.UDP,
}


def port_protocol(name: str, app_protocol: str | None = None, k8s_protocol: str = "TCP") -> Protocol:
    """Istio's protocol selection (pilot/pkg/serviceregistry/kube/conversion.go, `kube.ConvertProtocol`):
    appProtocol, else the name's prefix before '-'; neither known → UNSUPPORTED (sniffed)."""
    if k8s_protocol.upper() == "UDP":
        return Protocol.UDP
    for candidate in (app_protocol, name.split("-", 1)[0] if name else None):
        if candidate:
            key = candidate.lower()
            if key.startswith("kubernetes.io/"):
                key = key.removeprefix("kubernetes.io/")
            if key in _PREFIXES:
                return _PREFIXES[key]
    return Protocol.UNSUPPORTED


class Resolution(StrEnum):
    """How a sidecar reaches a service's endpoints (Istio's model.Resolution, pilot/pkg/model/service.go)."""

    CLIENT_SIDE_LB = "ClientSideLB"  # EDS: the control plane sends the endpoints
    DNS_LB = "DNSLB"  # STRICT_DNS: Envoy resolves the endpoints' host names
    PASSTHROUGH = "Passthrough"  # ORIGINAL_DST: to the address the app connected to


class Registry(StrEnum):
    """Where a service comes from (Istio's provider.ID)."""

    KUBERNETES = "Kubernetes"
    EXTERNAL = "External"  # a ServiceEntry


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    protocol: Protocol = Protocol.TCP


@dataclass(frozen=True, slots=True)
class Service:
    hostname: Hostname
    name: str
    namespace: str
    ports: tuple[ServicePort, ...]
    # each cluster's ClusterIPs for the same hostname (a proxy uses its own cluster's VIP)
    cluster_vips: Mapping[ClusterId, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    service_accounts: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    external_name: str | None = None
    # set when the mesh config lists this host as cluster-local
    cluster_local: bool = False
    resolution: Resolution = Resolution.CLIENT_SIDE_LB
    registry: Registry = Registry.KUBERNETES
    mesh_external: bool = False  # a ServiceEntry's MESH_EXTERNAL: its endpoints never get mTLS

    def port(self, number: int) -> ServicePort | None:
        return next((p for p in self.ports if p.port == number), None)

    def port_named(self, name: str) -> ServicePort | None:
        return next((p for p in self.ports if p.name == name), None)
