"""Addresses in the lab: pod IPs, each pod's own "localhost", and LoadBalancer addresses.

In loopback mode every address is on loopback (all of 127.0.0.0/8 is local on Linux, nothing to
set up); in netns mode (pods in their own network namespaces) the pod and LoadBalancer ranges are
the network plan's (`lab/network/plan.py`), and a pod's "localhost" is its own 127.0.0.1:

- A cluster's pod range (cluster1 `127.0.1.0/24`, cluster2 `127.0.2.0/24`): the first host address
  is the node's (the pods' hostIP), pods get the others round-robin, so a freed address is not
  handed out again while any other is free, and never while a pod still holds it.
- Each pod also gets a pod-local address, the same host offset in the cluster's local range
  (`127.0.1.7` → `127.1.1.7`). It stands in for the pod's private `localhost`: an injected pod's app
  listens there (the sidecar owns the pod IP on the app's ports and forwards inbound traffic to
  the app at this address), and so do the sidecar's pod-local ports (Envoy admin 15000, outbound
  15001). A pod without a sidecar listens on its pod IP.
- LoadBalancer addresses come from one range shared by the lab's clusters (`127.0.3.0/24`). Each
  node runtime claims an address by creating a file named after it in a directory the clusters
  share (O_EXCL makes the claim atomic across processes), so no two Services get the same one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from meshplane.lab import errors

log = logging.getLogger(__name__)


def network(cidr: str, loopback: bool = True) -> ipaddress.IPv4Network:
    """`cidr` as an IPv4 range; in loopback mode (`loopback`) it must lie in 127.0.0.0/8. (In netns
    mode the ranges are checked against the host's routes by `lab/network/ranges.py`.)"""
    try:
        net = ipaddress.ip_network(cidr)
    except ValueError as e:
        raise ValueError(f"invalid CIDR {cidr!r}: {e}") from e
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(f"{cidr} is not an IPv4 range")
    if loopback and not net.is_loopback:
        raise ValueError(f"{cidr} is not an IPv4 loopback range (the lab binds only to 127.0.0.0/8)")
    if net.num_addresses < 4:
        raise ValueError(f"{cidr} is too small")
    return net


def default_local_cidr(pod_cidr: str) -> str:
    """127.0.N.0/24 → 127.1.N.0/24: the pod-local range beside a pod range."""
    net = network(pod_cidr)
    octets = str(net.network_address).split(".")
    octets[1] = str((int(octets[1]) + 1) % 256)
    return f"{'.'.join(octets)}/{net.prefixlen}"


def local_address(pod_ip: str, pod_cidr: str, local_cidr: str) -> str:
    """The pod-local address of `pod_ip`: the same offset in the local range."""
    pods, local = network(pod_cidr), network(local_cidr)
    if pods.prefixlen != local.prefixlen:
        raise ValueError(f"pod range {pod_cidr} and local range {local_cidr} differ in size")
    ip = ipaddress.ip_address(pod_ip)
    if ip not in pods:
        raise ValueError(f"{pod_ip} is not in the pod range {pod_cidr}")
    return str(local.network_address + (int(ip) - int(pods.network_address)))


class PodIPs:
    """Round-robin allocation of pod IPs; `node_ip` is the range's first host address."""

    def __init__(self, cidr: str, loopback: bool = True) -> None:
        self.net = network(cidr, loopback)
        hosts = list(self.net.hosts())
        self.node_ip = str(hosts[0])
        self._pool = [str(h) for h in hosts[1:]]
        self._held: dict[str, str] = {}  # ip -> owner
        self._next = 0

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.net and ip != self.node_ip
        except ValueError:
            return False

    def owner(self, ip: str) -> str | None:
        return self._held.get(ip)

    def held(self) -> dict[str, str]:
        return dict(self._held)

    def claim(self, owner: str, ip: str) -> bool:
        """Take a specific address (a pod keeping its IP across a node restart)."""
        if not self.contains(ip) or self._held.get(ip, owner) != owner:
            return False
        self._held[ip] = owner
        return True

    def allocate(self, owner: str, busy: Iterable[str] = ()) -> str:
        """The owner's address, or the next free one after the last handed out (skipping `busy`:
        addresses that pods this allocator does not know about still hold)."""
        for ip, who in self._held.items():
            if who == owner:
                return ip
        skip = set(busy)
        n = len(self._pool)
        for i in range(n):
            idx = (self._next + i) % n
            ip = self._pool[idx]
            if ip not in self._held and ip not in skip:
                self._held[ip] = owner
                self._next = (idx + 1) % n
                return ip
        raise errors.AddressExhausted(f"no pod IP left in {self.net}")

    def release(self, owner: str) -> None:
        for ip in [ip for ip, who in self._held.items() if who == owner]:
            del self._held[ip]


class LbClaims:
    """LoadBalancer addresses claimed by files in a directory the lab's node runtimes share.

    File `<ip>` holds `<cluster>/<namespace>/<name>`. Blocking file calls: run them in a thread."""

    def __init__(self, directory: Path, cidr: str, loopback: bool = True) -> None:
        self.dir = directory
        self.net = network(cidr, loopback)

    def _owner_of(self, path: Path) -> str:
        try:
            return path.read_text().strip()
        except OSError:
            return ""

    def claims(self) -> dict[str, str]:
        """ip -> owner for every current claim."""
        out: dict[str, str] = {}
        if not self.dir.is_dir():
            return out
        for p in self.dir.iterdir():
            try:
                ipaddress.ip_address(p.name)
            except ValueError:
                continue
            out[p.name] = self._owner_of(p)
        return out

    def _try(self, ip: str, owner: str) -> bool:
        path = self.dir / ip
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return self._owner_of(path) == owner
        with os.fdopen(fd, "w") as f:
            f.write(owner + "\n")
        return True

    def claim(self, owner: str, preferred: str = "") -> str:
        """The owner's address: the one it already holds, else `preferred` if free, else the
        lowest free one."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for ip, who in self.claims().items():
            if who == owner and (not preferred or ip == preferred):
                return ip
        if preferred:
            if ipaddress.ip_address(preferred) not in self.net:
                raise errors.AddressExhausted(f"requested address {preferred} is not in {self.net}")
            if self._try(preferred, owner):
                return preferred
            raise errors.AddressExhausted(f"requested address {preferred} is already in use")
        for host in self.net.hosts():
            if self._try(str(host), owner):
                return str(host)
        raise errors.AddressExhausted(f"no LoadBalancer address left in {self.net}")

    def release(self, owner: str, keep: str = "") -> None:
        """Drop the owner's claims (except `keep`)."""
        for ip, who in self.claims().items():
            if who == owner and ip != keep:
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / ip).unlink()
                log.info("released LoadBalancer address ip=%s owner=%s", ip, owner)
