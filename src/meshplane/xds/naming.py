"""Istio's resource names: clusters, SNI names, listeners and route configurations.

Cluster names are `DIRECTION|PORT|SUBSET|HOST` (pilot/pkg/model/service.go `BuildSubsetKey`):
`outbound|5000||helloworld.sample.svc.cluster.local`, and `inbound|5000||` for a sidecar's own
ports. The SNI form (`BuildDNSSrvSubsetKey`) is `outbound_.5000_._.helloworld.sample.svc.cluster.local`;
the east-west gateway's AUTO_PASSTHROUGH listener and its SNI-DNAT clusters use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from meshplane.model.ids import Hostname
from meshplane.xds import errors


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


@dataclass(frozen=True, slots=True)
class ClusterName:
    direction: Direction
    port: int
    subset: str
    host: Hostname  # empty for inbound clusters
    sni_form: bool = False  # `outbound_.PORT_.SUBSET_.HOST` (SNI-DNAT clusters of gateways)

    def __str__(self) -> str:
        if self.sni_form:
            return sni_name(self.host, self.port, self.subset, self.direction)
        return f"{self.direction}|{self.port}|{self.subset}|{self.host}"


def outbound_cluster(host: str, port: int, subset: str = "") -> str:
    return f"outbound|{port}|{subset}|{host}"


def inbound_cluster(port: int) -> str:
    return f"inbound|{port}||"


def sni_name(host: str, port: int, subset: str = "", direction: Direction = Direction.OUTBOUND) -> str:
    """`outbound_.PORT_.SUBSET_.HOST`, Istio's SNI for in-mesh mTLS and gateway SNI-DNAT clusters."""
    return f"{direction}_.{port}_.{subset}_.{host}"


def _port(text: str, name: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise errors.ResourceNameError(f"cluster name {name!r}: port {text!r} is not a number in 1-65535")
    return int(text)


def parse_cluster(name: str) -> ClusterName:
    """Parse either form back; C1's server uses it to find the host of an EDS cluster name."""
    if "|" in name:
        parts = name.split("|")
        if len(parts) != 4:
            raise errors.ResourceNameError(f"cluster name {name!r}: want DIRECTION|PORT|SUBSET|HOST")
        direction, port, subset, host = parts
        sni = False
    else:
        parts = name.split("_.", 3)
        if len(parts) != 4:
            raise errors.ResourceNameError(
                f"cluster name {name!r}: want DIRECTION|PORT|SUBSET|HOST or DIRECTION_.PORT_.SUBSET_.HOST"
            )
        direction, port, subset, host = parts
        sni = True
    try:
        dir_ = Direction(direction)
    except ValueError:
        raise errors.ResourceNameError(
            f"cluster name {name!r}: direction {direction!r} is not inbound or outbound"
        ) from None
    if dir_ is Direction.OUTBOUND and not host:
        raise errors.ResourceNameError(f"cluster name {name!r}: an outbound cluster needs a host")
    return ClusterName(dir_, _port(port, name), subset, Hostname(host), sni)


def outbound_host(name: str) -> Hostname | None:
    """The host of an outbound (EDS) cluster name, or None when the name is not one."""
    try:
        parsed = parse_cluster(name)
    except errors.ResourceNameError:
        return None
    return parsed.host if parsed.direction is Direction.OUTBOUND else None


# Fixed names of a captured sidecar (pilot/pkg/networking/util/util.go, core/listener.go).
PASSTHROUGH_CLUSTER = "PassthroughCluster"
BLACKHOLE_CLUSTER = "BlackHoleCluster"
INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster"
VIRTUAL_OUTBOUND = "virtualOutbound"
VIRTUAL_INBOUND = "virtualInbound"
VIRTUAL_INBOUND_PORT = 15006


# Route configurations. The sidecar's explicit outbound HTTP listener (15001) uses one route
# configuration named after its port, as Istio names its per-port outbound route configs ("5000");
# gateways use `http.PORT` (pilot/pkg/networking/core/gateway.go).
OUTBOUND_LISTENER_PORT = 15001


def outbound_route(port: int = OUTBOUND_LISTENER_PORT) -> str:
    return str(port)


def gateway_http_route(port: int) -> str:
    return f"http.{port}"


def listener(address: str, port: int) -> str:
    """Istio names a listener by what it binds: `ADDRESS_PORT` (`0.0.0.0_15012`)."""
    return f"{address}_{port}"


def virtual_host(host: str, port: int) -> str:
    return f"{host}:{port}"
