"""The NameTable a proxy's DNS proxy answers from (Istio's NDS: pilot/pkg/networking/core/name_table.go
`BuildNameTable`, served by pilot/pkg/xds/nds.go).

Every mesh hostname the proxy can reach maps to its addresses:
- a Service with a ClusterIP: the proxy's own cluster's ClusterIPs, else (a Service that exists only
  in other clusters) the ClusterIPs of the first cluster that has it (Istio's `GetAddressForProxy`
  default address), so a name from a remote cluster resolves and the sidecar routes it;
- a headless Service: its ready endpoints' addresses from every cluster on the proxy's network
  (Istio's default `ENABLE_MULTICLUSTER_HEADLESS`; across networks traffic could not reach them
  without a gateway), for the port listed first;
- ExternalName Services, and a cluster-local Service the proxy's cluster does not have, are left out.
Kubernetes entries carry `shortname` and `namespace`, so the agent also answers `name`,
`name.namespace` and `name.namespace.svc` in the pod's search path. Not built (meshplane has no
source for them): ServiceEntry addresses and per-pod `hostname.subdomain` names of headless
Services (the model has no pod hostname).

The table is one resource with an empty name, as Istio sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from google.protobuf import message

from meshplane.agent import ndsproto
from meshplane.model import endpoint, service
from meshplane.model import proxy as proxy_model
from meshplane.model.ids import Hostname
from meshplane.xds import snapshot

REGISTRY = "Kubernetes"
RESOURCE_NAME = ""


def _addresses(svc: service.Service, proxy: proxy_model.Proxy) -> tuple[str, ...]:
    own = svc.cluster_vips.get(proxy.cluster_id)
    if own:
        return own
    if svc.cluster_local:
        return ()
    for cid in sorted(svc.cluster_vips):
        if svc.cluster_vips[cid]:
            return svc.cluster_vips[cid]
    return ()


def _headless(svc: service.Service, shards: snapshot.Shards | None, proxy: proxy_model.Proxy) -> list[str]:
    if not svc.ports or shards is None:
        return []
    first = svc.ports[0].name
    out: list[str] = []
    for cid in sorted(shards):
        if svc.cluster_local and cid != proxy.cluster_id:
            continue
        for ep in shards[cid]:
            if ep.health is not endpoint.Health.HEALTHY:
                continue
            if ep.ports and first not in ep.ports:
                continue
            if proxy.network and ep.network and ep.network != proxy.network:
                continue
            if ep.address not in out:
                out.append(ep.address)
    return out


def build(
    proxy: proxy_model.Proxy,
    services: Mapping[Hostname, service.Service],
    endpoints: Mapping[Hostname, snapshot.Shards],
) -> message.Message:
    """The proxy's NameTable message."""
    table: Any = ndsproto.NameTable()
    for host in sorted(services):
        svc = services[host]
        if svc.external_name:
            continue
        ips = list(_addresses(svc, proxy))
        if not ips and is_headless(svc):
            ips = _headless(svc, endpoints.get(host), proxy)
        if not ips:
            continue
        info = table.table[host]
        info.ips.extend(ips)
        info.registry = REGISTRY
        info.shortname = svc.name
        info.namespace = svc.namespace
    return cast(message.Message, table)


def is_headless(svc: service.Service | None) -> bool:
    """A Kubernetes Service whose name resolves to its endpoints (no ClusterIP in any cluster).
    A ServiceEntry host without addresses gets no entry (Istio's dns BuildNameTable resolves
    endpoints only for Kubernetes headless services)."""
    return (
        svc is not None
        and not svc.cluster_vips
        and not svc.external_name
        and svc.registry is service.Registry.KUBERNETES
    )
