"""Cluster DNS for a lab cluster: a hosts-format file of its Services, kept current.

One line per Service with a ClusterIP (`IP NAME.NS.svc.DOMAIN NAME.NS.svc NAME.NS`); a headless
Service lists its ready endpoints' addresses instead. The node runtime writes it atomically
(a temporary file renamed over the old one) whenever the Services change, and hands its path to
every pod as `MESHPLANE_HOSTS_FILE` and as the pod's `/etc/hosts`; `meshplane.runtime.resolve`
reads it (short names in the pod's namespace first). Each cluster has its own file, so a pod sees
only its own cluster's Services. When pods have their own network namespaces, each also gets its
own `/etc/netns/NS/hosts` (`podnet`), rewritten in place from `listeners` on every change.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from meshplane.lab import watchcache
from meshplane.lab.controllers import endpointslices
from meshplane.lab.node import podspec
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

HEADER = (
    "# meshplane lab cluster DNS for {cluster}: Service names -> ClusterIPs (written by the node runtime)\n"
)


def names(name: str, namespace: str, domain: str) -> str:
    return f"{name}.{namespace}.svc.{domain} {name}.{namespace}.svc {name}.{namespace}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One address of one Service."""

    ip: str
    name: str
    namespace: str


def entries(services: list[Obj], slices: list[Obj]) -> list[Entry]:
    """Every Service's ClusterIP; a headless Service's ready endpoint addresses instead."""
    out: list[Entry] = []
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for s in slices:
        m = podspec.meta(s)
        svc = (m.get("labels") or {}).get(endpointslices.SERVICE_NAME)
        if svc:
            by_service.setdefault((str(m.get("namespace")), str(svc)), []).append(s)
    for svc in sorted(
        services, key=lambda s: (str(podspec.meta(s).get("namespace")), str(podspec.meta(s).get("name")))
    ):
        m, spec = podspec.meta(svc), svc.get("spec") or {}
        ns, name = str(m.get("namespace")), str(m.get("name"))
        if spec.get("type") == "ExternalName":
            continue
        ip = spec.get("clusterIP")
        if isinstance(ip, str) and ip and ip != "None":
            out.append(Entry(ip, name, ns))
            continue
        ready = sorted(
            {
                str(a)
                for s in by_service.get((ns, name), [])
                for ep in s.get("endpoints") or []
                if ((ep or {}).get("conditions") or {}).get("ready", True)
                for a in (ep or {}).get("addresses") or []
            }
        )
        out.extend(Entry(a, name, ns) for a in ready)
    return out


def render(services: list[Obj], slices: list[Obj], cluster: str, domain: str = "cluster.local") -> str:
    return render_entries(entries(services, slices), cluster, domain)


def render_entries(found: list[Entry], cluster: str, domain: str = "cluster.local") -> str:
    lines = [HEADER.format(cluster=cluster)]
    lines.extend(f"{e.ip} {names(e.name, e.namespace, domain)}\n" for e in found)
    return "".join(lines)


def pod_hosts(
    found: list[Entry], namespace: str, domain: str = "cluster.local"
) -> list[tuple[str, list[str]]]:
    """The Service lines of one pod's own hosts file: every name, plus the bare name of the
    Services in the pod's namespace (a hosts file has no search list)."""
    return [
        (e.ip, [*names(e.name, e.namespace, domain).split(), *([e.name] if e.namespace == namespace else [])])
        for e in found
    ]


def write(path: Path, text: str) -> None:
    """Replace the file atomically (blocking)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ClusterDns:
    def __init__(
        self,
        services: watchcache.WatchCache,
        slices: watchcache.WatchCache,
        path: Path,
        cluster: str,
        domain: str = "cluster.local",
    ) -> None:
        self.services, self.slices, self.path, self.cluster, self.domain = (
            services,
            slices,
            path,
            cluster,
            domain,
        )
        self.trigger = watchcache.Trigger()
        self._written: str | None = None
        # called with the entries after every change (the pods' own hosts files, netns mode)
        self.listeners: list[Callable[[list[Entry]], Awaitable[None]]] = []
        self.current: list[Entry] = []
        services.add_handler(self.trigger.fire)
        slices.add_handler(self.trigger.fire)

    async def prepare(self) -> None:
        """An (empty) file exists before any pod starts, so every pod's etc/hosts link resolves."""
        if not await asyncio.to_thread(self.path.exists):
            await asyncio.to_thread(write, self.path, HEADER.format(cluster=self.cluster))

    async def run(self) -> None:
        await self.services.wait_synced()
        await self.slices.wait_synced()
        await watchcache.reconcile_loop("cluster dns", self.cluster, self.trigger, self.sync, 30.0)

    async def sync(self) -> None:
        found = entries(self.services.items(), self.slices.items())
        text = render_entries(found, self.cluster, self.domain)
        if text != self._written:
            self.current = found
            for listener in self.listeners:
                await listener(found)
            await asyncio.to_thread(write, self.path, text)
            self._written = text
            log.info(
                "hosts file updated %s",
                kv(cluster=self.cluster, path=self.path, entries=text.count("\n") - 1),
            )
