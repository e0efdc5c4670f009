"""An in-memory `ConfigSource` for tests and benchmarks: services and endpoint shards set directly."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from meshplane.model import endpoint, mesh, service
from meshplane.model.ids import ClusterId, Hostname, service_hostname
from meshplane.policy import config as policy_config
from meshplane.push import context


class MemorySource:
    def __init__(self, mesh_config: mesh.MeshConfig | None = None) -> None:
        self.mesh = mesh_config or mesh.MeshConfig()
        self.services: dict[Hostname, service.Service] = {}
        self.endpoints: dict[Hostname, dict[ClusterId, tuple[endpoint.Endpoint, ...]]] = {}
        self.policy = policy_config.PolicyConfig()
        self.snapshots = 0

    def add_service(
        self,
        name: str,
        namespace: str,
        ports: Iterable[tuple[str, int]] = (("http", 80),),
    ) -> service.Service:
        host = service_hostname(name, namespace)
        svc = service.Service(
            hostname=host,
            name=name,
            namespace=namespace,
            ports=tuple(service.ServicePort(n, p, service.port_protocol(n)) for n, p in ports),
        )
        self.services[host] = svc
        return svc

    def set_endpoints(
        self,
        host: Hostname,
        cluster: str,
        addresses: Iterable[str],
        port_name: str = "http",
        port: int = 8080,
    ) -> None:
        eps = tuple(
            endpoint.Endpoint(address=a, ports={port_name: port}, cluster_id=ClusterId(cluster))
            for a in addresses
        )
        self.endpoints.setdefault(host, {})[ClusterId(cluster)] = eps

    def remove_service(self, host: Hostname) -> None:
        self.services.pop(host, None)
        self.endpoints.pop(host, None)

    def snapshot(self, version: str) -> context.PushContext:
        self.snapshots += 1
        return context.PushContext(
            version=version,
            mesh=self.mesh,
            services=MappingProxyType(dict(self.services)),
            endpoints=MappingProxyType({h: MappingProxyType(dict(s)) for h, s in self.endpoints.items()}),
            policy=self.policy,
        )


def populate(
    source: MemorySource, services: int, endpoints: int, clusters: tuple[str, ...] = ("cluster1",)
) -> None:
    """`services` services in namespace ns-N, each with `endpoints` endpoints spread over `clusters`."""
    for i in range(services):
        svc = source.add_service(f"svc-{i}", f"ns-{i % 10}", (("http", 80),))
        per = {c: [] for c in clusters}  # type: dict[str, list[str]]
        for j in range(endpoints):
            cluster = clusters[j % len(clusters)]
            per[cluster].append(f"10.{(i >> 8) & 255}.{i & 255}.{j + 1}")
        for cluster, addrs in per.items():
            source.set_endpoints(svc.hostname, cluster, addrs)
