"""kube-proxy for a lab cluster: Service addresses forwarded to endpoints over TCP.

For each TCP port of each Service the proxy listens on `ClusterIP:port` (the dev cluster is
started with a loopback service range, so ClusterIPs are bindable) and, for `type: LoadBalancer`
Services, on `status.loadBalancer.ingress[].ip:port` too. A connection goes to one of the
Service's endpoints, read from its EndpointSlices at connect time (slice port matched by the
Service port's name), round-robin over the ready ones, or over the serving-and-terminating ones
when none is ready (kube-proxy's ProxyTerminatingEndpoints); with none the connection is closed.
Selectorless Services work the same through their hand-made slices: in cluster2,
`istiod.istio-system.svc:15012` → the east-west gateway's LoadBalancer address → the gateway pod.

In netns mode (pods in their own namespaces, Services DNAT'ed by `servicenat`) this proxy serves
only the LoadBalancer addresses, which are local to the host there: it is the lab's cloud load
balancer, reached when a connection already DNAT'ed once arrives for a LoadBalancer address of
another cluster (cluster2's `istiod` Service → cluster1's east-west gateway address).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshplane.lab import watchcache
from meshplane.lab.controllers import endpointslices
from meshplane.lab.node import podspec
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Frontend:
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class Route:
    namespace: str
    service: str
    port_name: str


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def frontends(service: Obj, serves: Callable[[str], bool] = _loopback) -> list[tuple[Frontend, Route]]:
    """The (address, port) pairs of a Service's TCP ports: ClusterIPs and LoadBalancer ingress IPs
    that `serves` accepts (this proxy's: loopback ones here, the lab's ranges for `servicenat`)."""
    m, spec = podspec.meta(service), service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    ips = [
        ip
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]
        if isinstance(ip, str) and ip not in ("", "None")
    ]
    if spec.get("type") == "LoadBalancer":
        for ing in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if isinstance(ing, dict) and isinstance(ing.get("ip"), str):
                ips.append(ing["ip"])
    out: list[tuple[Frontend, Route]] = []
    for p in spec.get("ports") or []:
        if not isinstance(p, dict) or p.get("protocol", "TCP") != "TCP" or not isinstance(p.get("port"), int):
            continue
        route = Route(str(m.get("namespace")), str(m.get("name")), str(p.get("name") or ""))
        out.extend((Frontend(ip, p["port"]), route) for ip in ips if serves(ip))
    return out


def backends(slices: list[Obj], port_name: str) -> list[tuple[str, int]]:
    """(ip, port) of ready endpoints, else of serving terminating ones."""
    ready: list[tuple[str, int]] = []
    fallback: list[tuple[str, int]] = []
    for s in slices:
        port = next(
            (
                p.get("port")
                for p in s.get("ports") or []
                if isinstance(p, dict) and (p.get("name") or "") == port_name
            ),
            None,
        )
        if not isinstance(port, int):
            continue
        for ep in s.get("endpoints") or []:
            cond = (ep or {}).get("conditions") or {}
            for addr in (ep or {}).get("addresses") or []:
                if cond.get("ready", True):
                    ready.append((str(addr), port))
                elif cond.get("serving") and cond.get("terminating"):
                    fallback.append((str(addr), port))
    return sorted(ready) or sorted(fallback)


def slices_of(slices: watchcache.WatchCache, route: Route) -> list[Obj]:
    """The EndpointSlices of the Service `route` names."""
    return [
        s
        for s in slices.items(route.namespace)
        if (podspec.meta(s).get("labels") or {}).get(endpointslices.SERVICE_NAME) == route.service
    ]


class ServiceProxy:
    def __init__(
        self,
        services: watchcache.WatchCache,
        slices: watchcache.WatchCache,
        cluster: str,
        serves: Callable[[str], bool] = _loopback,
    ) -> None:
        self.services, self.slices, self.cluster, self.serves = services, slices, cluster, serves
        self.trigger = watchcache.Trigger()
        self.routes: dict[Frontend, Route] = {}
        self._servers: dict[Frontend, asyncio.Server] = {}
        self._failed: dict[Frontend, str] = {}
        self._rr = itertools.count()
        self._conns: set[asyncio.Task[Any]] = set()
        services.add_handler(self.trigger.fire)

    async def run(self) -> None:
        await self.services.wait_synced()
        await self.slices.wait_synced()
        try:
            await watchcache.reconcile_loop("service proxy", self.cluster, self.trigger, self.sync, 10.0)
        finally:
            await self.stop()

    def slices_of(self, route: Route) -> list[Obj]:
        return slices_of(self.slices, route)

    async def sync(self) -> None:
        want: dict[Frontend, Route] = {}
        for svc in self.services.items():
            for fe, route in frontends(svc, self.serves):
                want.setdefault(fe, route)
        self.routes = want
        for fe in [fe for fe in self._servers if fe not in want]:
            server = self._servers.pop(fe)
            server.close()
            log.info("proxy stopped %s", kv(cluster=self.cluster, address=f"{fe.ip}:{fe.port}"))
        for fe, route in want.items():
            if fe in self._servers:
                continue
            try:
                self._servers[fe] = await asyncio.start_server(
                    functools.partial(self._accept, fe), fe.ip, fe.port, reuse_address=True
                )
                self._failed.pop(fe, None)
                log.info(
                    "proxy listening %s",
                    kv(
                        cluster=self.cluster,
                        address=f"{fe.ip}:{fe.port}",
                        service=f"{route.namespace}/{route.service}",
                    ),
                )
            except OSError as e:
                if self._failed.get(fe) != str(e):
                    log.warning(
                        "proxy cannot listen %s",
                        kv(
                            cluster=self.cluster,
                            address=f"{fe.ip}:{fe.port}",
                            service=route.service,
                            error=e.strerror or e,
                        ),
                    )
                self._failed[fe] = str(e)

    async def stop(self) -> None:
        for server in self._servers.values():
            server.close()
        for server in self._servers.values():
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        for t in list(self._conns):
            t.cancel()

    def _accept(self, fe: Frontend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(fe, reader, writer))
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def _handle(self, fe: Frontend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        route = self.routes.get(fe)
        targets = backends(self.slices_of(route), route.port_name) if route else []
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        start = next(self._rr)
        peer = writer.get_extra_info("peername")
        source = (str(peer[0]), 0) if isinstance(peer, tuple) and _loopback(str(peer[0])) else None
        for i in range(len(targets)):
            ip, port = targets[(start + i) % len(targets)]
            try:  # from the client's own address, as kube-proxy's DNAT keeps the source IP
                upstream = await asyncio.wait_for(asyncio.open_connection(ip, port, local_addr=source), 5.0)
                break
            except (OSError, TimeoutError) as e:
                log.debug(
                    "endpoint unreachable %s", kv(cluster=self.cluster, endpoint=f"{ip}:{port}", error=e)
                )
        if upstream is None:
            log.info(
                "no endpoint %s",
                kv(
                    cluster=self.cluster,
                    address=f"{fe.ip}:{fe.port}",
                    service=route.service if route else None,
                ),
            )
            writer.close()
            return
        ureader, uwriter = upstream
        try:
            await asyncio.gather(_pipe(reader, uwriter), _pipe(ureader, writer))
        finally:
            for w in (writer, uwriter):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.close()
