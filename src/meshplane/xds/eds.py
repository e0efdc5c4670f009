"""Endpoints (EDS): one ClusterLoadAssignment per `outbound|PORT|SUBSET|HOST`, from every cluster's shard.

A subset cluster keeps the endpoints (of every cluster) whose pod labels carry all of the
DestinationRule subset's labels (Istio's subset selector).

As Istio's endpoint builder (pilot/pkg/xds/endpoints/endpoint_builder.go): shards are concatenated
in cluster-id order; a cluster-local host keeps only the proxy's own cluster; endpoints outside the
proxy's REQUESTED_NETWORK_VIEW and endpoints without the port are dropped; endpoints are grouped
by locality, and with a locality LB setting (locality.py) their priorities and weights are set
relative to the calling proxy's locality. Health is sent, not filtered: ready endpoints are
HEALTHY, not-ready ones UNHEALTHY, terminating ones DRAINING, so Envoy stops new requests to
them and lets the open ones finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from envoy.config.core.v3 import base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from google.protobuf import wrappers_pb2

from meshplane.model import endpoint, mesh, service
from meshplane.model.ids import ClusterId
from meshplane.xds import locality, protos, snapshot

_HEALTH = {
    endpoint.Health.HEALTHY: health_check_pb2.HEALTHY,
    endpoint.Health.UNHEALTHY: health_check_pb2.UNHEALTHY,
    endpoint.Health.DRAINING: health_check_pb2.DRAINING,
}
TLS_MODE_ISTIO = "istio"


@dataclass(frozen=True, slots=True)
class View:
    """What makes one proxy's EDS for a host differ from another's."""

    cluster_id: ClusterId | None  # set only for cluster-local hosts
    networks: tuple[str, ...]  # REQUESTED_NETWORK_VIEW; empty means every network


def view(svc: service.Service, m: mesh.MeshConfig, cluster_id: ClusterId, networks: Iterable[str]) -> View:
    local = svc.cluster_local or m.is_cluster_local(svc.hostname)
    return View(cluster_id if local else None, tuple(sorted(set(networks))))


def canonical(lbl: Mapping[str, str], workload: str) -> tuple[str, str]:
    """Istio's canonical service name and revision (pkg/kube/labels CanonicalService)."""
    name = (
        lbl.get("service.istio.io/canonical-name")
        or lbl.get("app.kubernetes.io/name")
        or lbl.get("app")
        or workload
    )
    rev = (
        lbl.get("service.istio.io/canonical-revision")
        or lbl.get("app.kubernetes.io/version")
        or lbl.get("version")
        or "latest"
    )
    return name, rev


def _metadata(ep: endpoint.Endpoint, plaintext: bool = False) -> base_pb2.Metadata:
    name, rev = canonical(ep.labels, ep.workload_name)
    md = base_pb2.Metadata()
    # fields set directly: Struct.update() is several times slower, and this runs per endpoint
    md.filter_metadata["istio"].fields[
        "workload"
    ].string_value = f"{ep.workload_name};{ep.namespace};{name};{rev};{ep.cluster_id}"
    if ep.tls_mode == TLS_MODE_ISTIO and not plaintext:
        md.filter_metadata["envoy.transport_socket_match"].fields["tlsMode"].string_value = TLS_MODE_ISTIO
    return md


def selected(
    shards: snapshot.Shards | None,
    port: service.ServicePort,
    v: View,
    subset: Mapping[str, str] | None = None,
) -> list[tuple[endpoint.Endpoint, int]]:
    """(endpoint, its port) for the endpoints this view keeps, in shard key order; with `subset`
    (a DestinationRule subset's labels) only the endpoints carrying all of those labels."""
    out: list[tuple[endpoint.Endpoint, int]] = []
    if not shards:
        return out
    keys = [v.cluster_id] if v.cluster_id is not None else sorted(shards)
    for key in keys:
        for ep in shards.get(key, ()):
            if v.networks and ep.network and ep.network not in v.networks:
                continue
            if subset and any(ep.labels.get(k) != val for k, val in subset.items()):
                continue
            target = ep.ports.get(port.name)
            if target is None:
                continue
            out.append((ep, target))
    return out


def _never(ep: endpoint.Endpoint, target: int) -> bool:
    return False


def load_assignment(
    cluster_name: str,
    shards: snapshot.Shards | None,
    port: service.ServicePort,
    v: View,
    subset: Mapping[str, str] | None = None,
    plaintext: Callable[[endpoint.Endpoint, int], bool] = _never,
    locality_lb: locality.Setting | None = None,
) -> endpoint_pb2.ClusterLoadAssignment:
    """`plaintext(ep, target)`: the server does not accept mTLS there (PeerAuthentication DISABLE),
    so the endpoint gets no `tlsMode: istio` and clients' auto mTLS sends plaintext.
    `locality_lb`: the proxy's locality LB setting for this cluster (None: none applies)."""
    groups: dict[endpoint.Locality, list[tuple[endpoint.Endpoint, endpoint_components_pb2.LbEndpoint]]] = {}
    for ep, target in selected(shards, port, v, subset):
        groups.setdefault(ep.locality, []).append(
            (
                ep,
                endpoint_components_pb2.LbEndpoint(
                    endpoint=endpoint_components_pb2.Endpoint(
                        address=protos.socket_address(ep.address, target)
                    ),
                    health_status=_HEALTH[ep.health],
                    metadata=_metadata(ep, plaintext(ep, target)),
                    load_balancing_weight=wrappers_pb2.UInt32Value(value=1),
                ),
            )
        )
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name)
    if locality_lb is not None:
        cla.endpoints.extend(locality.apply(locality_lb, list(groups.items())))
    else:
        cla.endpoints.extend(locality.group(loc, members) for loc, members in groups.items())
    return cla
