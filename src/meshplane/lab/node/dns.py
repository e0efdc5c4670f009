"""Cluster DNS for a lab cluster: a hosts-format file of its Services, kept current.

One line per Service with a ClusterIP (`IP NAME.NS.svc.DOMAIN NAME.NS.svc NAME.NS`); a headless
Service lists its ready endpoints' addresses instead. The node runtime writes it atomically
(a temporary file renamed over the old one) whenever the Services change, and hands its path to
every pod as `MESHPLANE_HOSTS_FILE` and as the pod's `/etc/hosts`; `meshplane.runtime.resolve`
reads it (short names in the pod's namespace first). Each cluster has its own file, so a pod sees
only its own cluster's Services.
"""

from __future__ import annotations

import asyncio
import logging
import os
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


def render(services: list[Obj], slices: list[Obj], cluster: str, domain: str = "cluster.local") -> str:
    lines = [HEADER.format(cluster=cluster)]
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
            lines.append(f"{ip} {names(name, ns, domain)}\n")
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
        lines.extend(f"{a} {names(name, ns, domain)}\n" for a in ready)
    return "".join(lines)


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
        text = render(self.services.items(), self.slices.items(), self.cluster, self.domain)
        if text != self._written:
            await asyncio.to_thread(write, self.path, text)
            self._written = text
            log.info(
                "hosts file updated %s",
                kv(cluster=self.cluster, path=self.path, entries=text.count("\n") - 1),
            )
