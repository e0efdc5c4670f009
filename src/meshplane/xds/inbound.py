"""A sidecar's own service ports: the services whose endpoints in its cluster carry its IP.

The index from (cluster, address) to endpoints is built once per push (see cache.ResourceCache.derived)
so finding a proxy's own ports does not scan every endpoint for every proxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshplane.model import endpoint, service
from meshplane.model.ids import ClusterId, Hostname
from meshplane.xds import proxyview, snapshot

Index = Mapping[tuple[ClusterId, str], tuple[tuple[Hostname, endpoint.Endpoint], ...]]


def build_index(ctx: snapshot.Snapshot) -> Index:
    out: dict[tuple[ClusterId, str], list[tuple[Hostname, endpoint.Endpoint]]] = {}
    for host, shards in ctx.endpoints.items():
        for cluster_id, eps in shards.items():
            for ep in eps:
                out.setdefault((cluster_id, ep.address), []).append((host, ep))
    return {k: tuple(v) for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class InboundPort:
    """One port the sidecar serves for its app: the target port, with the address peers use."""

    address: str  # the proxy IP the endpoints carry
    port: int  # the target port (container port), also the inbound cluster's port
    protocol: service.Protocol
    hosts: tuple[Hostname, ...]  # services that reach the app through this port


def own_ports(
    view: proxyview.InboundView, services: Mapping[Hostname, service.Service], index: Index
) -> tuple[InboundPort, ...]:
    found: dict[int, InboundPort] = {}
    for ip in view.ips:
        for host, ep in index.get((view.cluster_id, ip), ()):
            svc = services.get(host)
            if svc is None:
                continue
            for sp in svc.ports:
                target = ep.ports.get(sp.name)
                if target is None or sp.protocol is service.Protocol.UDP:
                    continue
                prev = found.get(target)
                if prev is None:
                    found[target] = InboundPort(ip, target, sp.protocol, (host,))
                    continue
                # HTTP wins over TCP when two services share a target port (the HCM serves both).
                proto = prev.protocol if prev.protocol.is_http or not sp.protocol.is_http else sp.protocol
                hosts = prev.hosts if host in prev.hosts else (*prev.hosts, host)
                found[target] = InboundPort(prev.address, target, proto, hosts)
    return tuple(found[p] for p in sorted(found))
