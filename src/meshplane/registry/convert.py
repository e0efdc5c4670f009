"""Pure conversions from Kubernetes objects (lightkube models) to the mesh model.

Follows Istio's kube controller: a Service becomes a mesh Service keyed by its hostname; each
EndpointSlice endpoint becomes one Endpoint per address, enriched from its Pod (labels, service
account, network, sidecar) and Node (locality).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from meshplane.model import endpoint as ep
from meshplane.model import ids
from meshplane.model import service as svc_model

LABEL_NETWORK = "topology.istio.io/network"
LABEL_CLUSTER = "topology.istio.io/cluster"
LABEL_SUBZONE = "topology.istio.io/subzone"
LABEL_REGION = "topology.kubernetes.io/region"
LABEL_ZONE = "topology.kubernetes.io/zone"
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_LOCALITY = "istio-locality"
LABEL_TLS_MODE = "security.istio.io/tlsMode"
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
ANNOTATION_CANONICAL_SAS = "alpha.istio.io/canonical-serviceaccounts"

PodLookup = Callable[[str, str], Any | None]  # (namespace, name) -> Pod
NodeLookup = Callable[[str], Any | None]  # name -> Node


def _labels(obj: Any) -> dict[str, str]:
    meta = getattr(obj, "metadata", None)
    return dict(getattr(meta, "labels", None) or {})


def service(obj: Any, cluster: ids.ClusterId, domain: str = ids.DEFAULT_DOMAIN) -> svc_model.Service:
    """A cluster's view of a Service (its own ClusterIPs only; the aggregate merges clusters)."""
    meta, spec = obj.metadata, obj.spec
    ports = tuple(
        svc_model.ServicePort(
            name=p.name or "",
            port=int(p.port),
            protocol=svc_model.port_protocol(p.name or "", p.appProtocol, p.protocol or "TCP"),
        )
        for p in (spec.ports or [])
    )
    vips: tuple[str, ...] = ()
    if spec.type != "ExternalName":
        ips = list(spec.clusterIPs or ([spec.clusterIP] if spec.clusterIP else []))
        vips = tuple(ip for ip in ips if ip and ip != "None")
    annotations = meta.annotations or {}
    sas = frozenset(s.strip() for s in annotations.get(ANNOTATION_CANONICAL_SAS, "").split(",") if s.strip())
    return svc_model.Service(
        hostname=ids.service_hostname(meta.name, meta.namespace, domain),
        name=meta.name,
        namespace=meta.namespace,
        ports=ports,
        cluster_vips=MappingProxyType({cluster: vips}) if vips else MappingProxyType({}),
        service_accounts=sas,
        labels=MappingProxyType(_labels(obj)),
        external_name=spec.externalName if spec.type == "ExternalName" else None,
    )


def slice_service_name(obj: Any) -> str | None:
    return _labels(obj).get(LABEL_SERVICE_NAME)


def health(conditions: Any) -> ep.Health:
    """Kubernetes EndpointSlice conditions → Istio health (nil ready means ready)."""
    if conditions is None:
        return ep.Health.HEALTHY
    if conditions.terminating:
        return ep.Health.DRAINING
    if conditions.ready is False:
        return ep.Health.UNHEALTHY
    return ep.Health.HEALTHY


def locality(pod: Any | None, node: Any | None, zone: str | None = None) -> ep.Locality:
    """Pod label istio-locality (region.zone.subzone), else the node's topology labels."""
    if pod is not None:
        raw = _labels(pod).get(LABEL_LOCALITY)
        if raw:
            parts = [*raw.replace(".", "/").split("/"), "", "", ""]
            return ep.Locality(parts[0], parts[1], parts[2])
    if node is not None:
        nl = _labels(node)
        return ep.Locality(
            nl.get(LABEL_REGION, ""), nl.get(LABEL_ZONE, "") or (zone or ""), nl.get(LABEL_SUBZONE, "")
        )
    return ep.Locality(zone=zone or "")


def pod_network(pod: Any | None, default: str) -> str:
    if pod is not None:
        net = _labels(pod).get(LABEL_NETWORK)
        if net:
            return net
    return default


def endpoints_from_slice(
    obj: Any,
    cluster: ids.ClusterId,
    *,
    default_network: str,
    pods: PodLookup,
    nodes: NodeLookup,
) -> list[ep.Endpoint]:
    """One Endpoint per address of every endpoint in the slice (IPv4/IPv6 slices; FQDN slices are skipped)."""
    if getattr(obj, "addressType", "IPv4") not in ("IPv4", "IPv6"):
        return []
    namespace = obj.metadata.namespace
    ports: Mapping[str, int] = MappingProxyType(
        {(p.name or ""): int(p.port) for p in (obj.ports or []) if p.port is not None}
    )
    out: list[ep.Endpoint] = []
    for item in obj.endpoints or []:
        ref = item.targetRef
        pod = pods(ref.namespace or namespace, ref.name) if ref is not None and ref.kind == "Pod" else None
        node_name = item.nodeName or (pod.spec.nodeName if pod is not None and pod.spec else None)
        node = nodes(node_name) if node_name else None
        loc = locality(pod, node, item.zone)
        network = pod_network(pod, default_network)
        labels = _labels(pod) if pod is not None else {}
        labels.update({LABEL_CLUSTER: cluster, LABEL_NETWORK: network})
        if loc.region:
            labels[LABEL_REGION] = loc.region
        if loc.zone:
            labels[LABEL_ZONE] = loc.zone
        if loc.subzone:
            labels[LABEL_SUBZONE] = loc.subzone
        if node_name:
            labels[LABEL_HOSTNAME] = node_name
        sa = ""
        tls_mode = ""
        if pod is not None:
            sa = (pod.spec.serviceAccountName if pod.spec else None) or "default"
            tls_mode = "istio" if _labels(pod).get(LABEL_TLS_MODE) == "istio" else ""
        frozen_labels = MappingProxyType(labels)
        for address in item.addresses or []:
            out.append(
                ep.Endpoint(
                    address=address,
                    ports=ports,
                    cluster_id=cluster,
                    network=network,
                    locality=loc,
                    labels=frozen_labels,
                    service_account=sa,
                    namespace=namespace,
                    workload_name=ref.name if ref is not None and ref.kind == "Pod" else "",
                    health=health(item.conditions),
                    tls_mode=tls_mode,
                )
            )
    return out


def merge_services(views: list[svc_model.Service]) -> svc_model.Service:
    """One hostname across clusters: the first cluster's Service wins; VIPs per cluster and SAs are merged."""
    first = views[0]
    if len(views) == 1:
        return first
    vips: dict[ids.ClusterId, tuple[str, ...]] = {}
    sas: set[str] = set()
    for view in views:
        for cluster, ips in view.cluster_vips.items():
            vips.setdefault(cluster, ips)
        sas |= view.service_accounts
    return svc_model.Service(
        hostname=first.hostname,
        name=first.name,
        namespace=first.namespace,
        ports=first.ports,
        cluster_vips=MappingProxyType(vips),
        service_accounts=frozenset(sas),
        labels=first.labels,
        external_name=first.external_name,
        cluster_local=first.cluster_local,
    )
