"""Service-name resolution for processes that run as lab pods.

A real pod resolves `istiod.istio-system.svc` through cluster DNS. A lab pod is a plain process on
the host, so the lab's node runtime keeps a hosts-format file per cluster with one line per Service:

    127.0.10.7  istiod.istio-system.svc.cluster.local istiod.istio-system.svc istiod.istio-system

and gives each pod its path in `MESHPLANE_HOSTS_FILE`. `resolve(host)` maps a host name to that
Service's ClusterIP before meshplane's own networking code connects (the agent's connection to the
discovery address, the sample apps); a name without a dot is tried in the pod's namespace first
(`POD_NAMESPACE`), as resolv.conf's search list would. `localhost` maps to the pod's own loopback
address (`MESHPLANE_LOCALHOST`). Without `MESHPLANE_HOSTS_FILE` (a real pod) the host is returned
unchanged and the system resolver does the work.

The table is re-read only when the file changes (one stat() per call, a read of a few KB after a
change); event-loop code with a strict no-I/O budget can call `aresolve`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from meshplane.runtime import ipaddr

HOSTS_FILE_ENV = "MESHPLANE_HOSTS_FILE"
NAMESPACE_ENV = "POD_NAMESPACE"
LOCALHOST_ENV = "MESHPLANE_LOCALHOST"
MAX_BYTES = 4 * 1024 * 1024


def parse_hosts(text: str) -> dict[str, str]:
    """Name → first address for it, from /etc/hosts-format text; malformed lines are skipped."""
    table: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            addr = str(ipaddress.ip_address(fields[0]))
        except ValueError:
            continue
        for name in fields[1:]:
            table.setdefault(name.lower().rstrip("."), addr)
    return table


def lookup(host: str, table: dict[str, str], namespace: str = "", localhost: str = "") -> str | None:
    """The address for `host` in `table` (short names tried in `namespace` first), or None."""
    name = host.strip().lower()
    absolute = name.endswith(".")
    name = name.rstrip(".")
    if not name:
        return None
    if name == "localhost" and localhost:
        return localhost
    if not absolute and "." not in name and namespace:
        found = table.get(f"{name}.{namespace.lower()}")
        if found is not None:
            return found
    return table.get(name)


def _is_ip(host: str) -> bool:
    return ipaddr.is_ip(host.strip("[]"))


@dataclass(slots=True)
class _Cached:
    path: str = ""
    stamp: tuple[int, int, int] = (0, 0, 0)
    table: dict[str, str] | None = None


class HostsTable:
    """A hosts file, re-read when its inode, size or mtime changes (the node runtime replaces it
    atomically, so a reader never sees half a file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached = _Cached()

    def stale(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return self._cached.table is not None or self._cached.path != path
        return (path, (st.st_ino, st.st_size, st.st_mtime_ns)) != (self._cached.path, self._cached.stamp)

    def table(self, path: str) -> dict[str, str]:
        with self._lock:
            try:
                st = os.stat(path)
            except OSError:
                self._cached = _Cached(path=path)
                return {}
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if self._cached.table is not None and (path, stamp) == (self._cached.path, self._cached.stamp):
                return self._cached.table
            try:
                with open(path, "rb") as f:
                    data = f.read(MAX_BYTES)
            except OSError:
                return self._cached.table or {}
            table = parse_hosts(data.decode("utf-8", errors="replace"))
            self._cached = _Cached(path=path, stamp=stamp, table=table)
            return table


_TABLE = HostsTable()


def resolve(host: str) -> str:
    """The address to connect to for `host`: its ClusterIP from the lab's hosts file when this
    process is a lab pod and the name is a Service, else `host` unchanged."""
    path = os.environ.get(HOSTS_FILE_ENV, "")
    if not path or _is_ip(host):
        return host
    found = lookup(
        host,
        _TABLE.table(path),
        os.environ.get(NAMESPACE_ENV, ""),
        os.environ.get(LOCALHOST_ENV, ""),
    )
    return found or host


async def aresolve(host: str) -> str:
    """`resolve` for event-loop code: the file is re-read in a thread when it has changed."""
    path = os.environ.get(HOSTS_FILE_ENV, "")
    if path and not _is_ip(host) and _TABLE.stale(path):
        await asyncio.to_thread(_TABLE.table, path)
    return resolve(host)


def hosts_file() -> Path | None:
    """The lab's hosts file for this process, if any."""
    path = os.environ.get(HOSTS_FILE_ENV, "")
    return Path(path) if path else None
