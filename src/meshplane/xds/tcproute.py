"""A VirtualService's `tcp` routes for a sidecar: where a TCP service port's connections go.

As Istio builds a sidecar's outbound TCP filter chain for a service (pilot/pkg/networking/core/
networkfilter.go, listener.go buildSidecarOutboundTCPTLSFilterChainOpts): the service's
VirtualService (bound to `mesh`) is looked up as for HTTP; its first `tcp` route whose matches
apply (a match's `port` is the service port, its `gateways` include `mesh`; no match applies to
all) decides the destinations, one cluster or weighted clusters; without one the connection goes
to the service's own `outbound|PORT||HOST`.
"""

from __future__ import annotations

from meshplane.model.ids import Hostname
from meshplane.networking import config as networking_config
from meshplane.networking import virtualservice as vs_model
from meshplane.xds import httproute, naming

Clusters = tuple[tuple[str, int], ...]


def _applies(route: vs_model.L4Route, port: int) -> bool:
    return not route.matches or any(
        (not m.port or m.port == port) and (not m.gateways or vs_model.MESH_GATEWAY in m.gateways)
        for m in route.matches
    )


def clusters(
    host: Hostname,
    port: int,
    namespace: str,
    services: httproute.Services,
    cfg: networking_config.NetworkingConfig,
) -> Clusters:
    """(cluster, weight) pairs a sidecar in `namespace` sends `host:port` TCP connections to."""
    vs = cfg.sidecar_virtual_service(host, namespace) if cfg.virtual_services else None
    for i, route in enumerate(vs.tcp if vs is not None else ()):
        if not _applies(route, port):
            continue
        assert vs is not None
        found = httproute.weighted(route.routes, services, port, f"vs={vs.key} tcp[{i}]")
        if found:
            return tuple((name, weight) for _, name, weight in found)
    return ((naming.outbound_cluster(host, port), 1),)
