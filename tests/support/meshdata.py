"""Builders for services, endpoints, proxies and push contexts used by the xds tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from meshplane.model import endpoint, mesh, service
from meshplane.model import proxy as proxy_model
from meshplane.model.ids import ClusterId, Hostname, ProxyId, service_hostname
from meshplane.networking import config as networking_config
from meshplane.push import context

HELLO = service_hostname("helloworld", "sample")


def svc(
    name: str = "helloworld",
    namespace: str = "sample",
    ports: Iterable[tuple[str, int]] = (("http", 5000),),
    vips: Mapping[str, Iterable[str]] | None = None,
    service_accounts: Iterable[str] = (),
) -> service.Service:
    return service.Service(
        hostname=service_hostname(name, namespace),
        name=name,
        namespace=namespace,
        ports=tuple(service.ServicePort(n, p, service.port_protocol(n)) for n, p in ports),
        cluster_vips=MappingProxyType({ClusterId(c): tuple(v) for c, v in (vips or {}).items()}),
        service_accounts=frozenset(service_accounts),
    )


def ep(
    address: str,
    cluster: str = "cluster1",
    ports: Mapping[str, int] | None = None,
    *,
    health: endpoint.Health = endpoint.Health.HEALTHY,
    network: str = "",
    tls: bool = False,
    sa: str = "",
    namespace: str = "sample",
    workload: str = "",
    labels: Mapping[str, str] | None = None,
    locality: endpoint.Locality = endpoint.Locality(),
) -> endpoint.Endpoint:
    return endpoint.Endpoint(
        address=address,
        ports=MappingProxyType(dict(ports if ports is not None else {"http": 5000})),
        cluster_id=ClusterId(cluster),
        network=network,
        locality=locality,
        labels=MappingProxyType(dict(labels or {})),
        service_account=sa,
        namespace=namespace,
        workload_name=workload,
        health=health,
        tls_mode="istio" if tls else "",
    )


def shards(*eps: endpoint.Endpoint) -> Mapping[ClusterId, tuple[endpoint.Endpoint, ...]]:
    out: dict[ClusterId, list[endpoint.Endpoint]] = {}
    for e in eps:
        out.setdefault(e.cluster_id, []).append(e)
    return MappingProxyType({k: tuple(v) for k, v in out.items()})


def ctx(
    services: Iterable[service.Service],
    endpoints: Mapping[Hostname, Mapping[ClusterId, tuple[endpoint.Endpoint, ...]]] | None = None,
    *,
    version: str = "v1",
    mesh_config: mesh.MeshConfig | None = None,
    networking: networking_config.NetworkingConfig | None = None,
) -> context.PushContext:
    return context.PushContext(
        version=version,
        mesh=mesh_config or mesh.MeshConfig(),
        services=MappingProxyType({s.hostname: s for s in services}),
        endpoints=MappingProxyType(dict(endpoints or {})),
        networking=networking or networking_config.NetworkingConfig(),
    )


def proxy(
    ip: str = "127.0.1.10",
    cluster: str = "cluster1",
    namespace: str = "sample",
    *,
    kind: proxy_model.ProxyType = proxy_model.ProxyType.SIDECAR,
    pod: str = "client",
    labels: Mapping[str, str] | None = None,
    network_view: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> proxy_model.Proxy:
    return proxy_model.Proxy(
        id=ProxyId(f"{pod}.{namespace}"),
        type=kind,
        ip_addresses=(ip,),
        pod_name=pod,
        namespace=namespace,
        dns_domain=f"{namespace}.svc.cluster.local",
        cluster_id=ClusterId(cluster),
        labels=MappingProxyType(dict(labels or {})),
        requested_network_view=tuple(network_view),
        metadata=MappingProxyType(dict(metadata or {})),
    )
