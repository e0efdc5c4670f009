"""The lab's address ranges, per cluster, and the checks that make them safe to use on this host.

Each cluster has a pod range, a Service range and a LoadBalancer range. The defaults lie in
198.18.0.0/15 (RFC 2544's benchmark range, not used on real networks), but nothing is assumed:

- `validate` (pure, on the text of `ip -4 route show table all`): every range is IPv4, no two
  overlap, and none overlaps a route already on the host (`default` aside; routes out of the
  lab's own devices aside, so a re-check after the bridge exists still passes).
- `check_via`, once the lab's bridge exists: an address of each range is routed out of the
  bridge (`ip route get`), so nothing addressed to the lab can leave the machine.

Every error is a `RangeError` naming the range (`cluster1 pods 198.18.1.0/24`) and, for an
overlap, the route or range it collides with.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshplane.lab import errors
from meshplane.lab.network import command

# cluster -> (pods, services, load balancers); each a /24 of 198.18.0.0/15
DEFAULTS: dict[str, tuple[str, str, str]] = {
    "cluster1": ("198.18.1.0/24", "198.18.11.0/24", "198.18.21.0/24"),
    "cluster2": ("198.18.2.0/24", "198.18.12.0/24", "198.18.22.0/24"),
}
# route types `ip route` prints before the destination (unicast is not printed)
_ROUTE_TYPES = {"unicast", "local", "broadcast", "multicast", "anycast", "unreachable", "prohibit",
                "blackhole", "throw", "nat"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Range:
    label: str  # "cluster1 pods"
    net: ipaddress.IPv4Network

    def __str__(self) -> str:
        return f"{self.label} {self.net}"


@dataclass(frozen=True, slots=True)
class ClusterRanges:
    cluster: str
    pods: Range
    services: Range
    load_balancers: Range

    def all(self) -> tuple[Range, Range, Range]:
        return (self.pods, self.services, self.load_balancers)


@dataclass(frozen=True, slots=True)
class Route:
    net: ipaddress.IPv4Network
    dev: str | None
    line: str


def parse(label: str, cidr: str) -> Range:
    """`cidr` as an IPv4 network of at least 4 addresses; RangeError names `label` otherwise."""
    try:
        net = ipaddress.ip_network(cidr.strip())
    except ValueError as e:
        raise errors.RangeError(f"{label} {cidr!r} is not a network address range: {e}") from e
    if not isinstance(net, ipaddress.IPv4Network):
        raise errors.RangeError(f"{label} {cidr} is not IPv4 (the lab's ranges are IPv4)")
    if net.num_addresses < 4:
        raise errors.RangeError(f"{label} {cidr} is too small (a gateway and a pod need a /30 at least)")
    return Range(label, net)


def cluster_ranges(
    cluster: str, pods: str | None = None, services: str | None = None, load_balancers: str | None = None
) -> ClusterRanges:
    """The ranges of `cluster`: the given ones, else its defaults (a cluster without defaults must
    give all three)."""
    default = DEFAULTS.get(cluster, (None, None, None))
    chosen = {"pods": pods or default[0], "services": services or default[1],
              "load balancers": load_balancers or default[2]}  # fmt: skip
    missing = [kind for kind, cidr in chosen.items() if cidr is None]
    if missing:
        raise errors.RangeError(f"{cluster} has no default {', '.join(missing)} range; give one")
    p, s, lb = (parse(f"{cluster} {kind}", cidr or "") for kind, cidr in chosen.items())
    return ClusterRanges(cluster, p, s, lb)


def gateway(r: Range) -> ipaddress.IPv4Interface:
    """The host side of a range on the bridge: its first host address, with the range's prefix."""
    return ipaddress.IPv4Interface(f"{r.net.network_address + 1}/{r.net.prefixlen}")


def probe_address(r: Range) -> ipaddress.IPv4Address:
    """An address of the range that is not the gateway (the last one before broadcast)."""
    return r.net.broadcast_address - 1


def parse_routes(text: str) -> list[Route]:
    """The routes of `ip -4 route show table all` output, without `default` ones (nexthop lines,
    which continue a multipath route, are skipped)."""
    routes = []
    for line in text.splitlines():
        if not line.strip() or line[0].isspace():
            continue
        words = line.split()
        if words[0] in _ROUTE_TYPES and len(words) > 1:
            words = words[1:]
        if words[0] == "default":
            continue
        try:
            net = ipaddress.ip_network(words[0], strict=False)
        except ValueError:
            continue  # not a destination (an unknown keyword); nothing of ours to compare
        if not isinstance(net, ipaddress.IPv4Network):
            continue
        dev = words[words.index("dev") + 1] if "dev" in words[:-1] else None
        routes.append(Route(net, dev, line.strip()))
    return routes


def validate(ranges: Sequence[Range], routes_text: str, *, own_devices: Iterable[str] = ()) -> None:
    """Raise RangeError unless the ranges are disjoint and none overlaps a host route (routes out of
    `own_devices`, the lab's bridge, do not count)."""
    for i, a in enumerate(ranges):
        for b in ranges[i + 1 :]:
            if a.net.overlaps(b.net):
                raise errors.RangeError(f"{a} overlaps {b}")
    own = set(own_devices)
    for route in parse_routes(routes_text):
        if route.dev is not None and route.dev in own:
            continue
        for r in ranges:
            if r.net.overlaps(route.net):
                raise errors.RangeError(f"{r} overlaps the host route {route.line!r}; choose another range")


async def host_routes() -> str:
    return await command.run("ip", "-4", "route", "show", "table", "all")


async def check_host(ranges: Sequence[Range], *, own_devices: Iterable[str] = ()) -> None:
    """`validate` against this host's routes, read now."""
    validate(ranges, await host_routes(), own_devices=own_devices)


async def route_device(address: ipaddress.IPv4Address) -> str | None:
    """The device `ip route get ADDRESS` sends it out of (None when it names none)."""
    words = (await command.run("ip", "-4", "-o", "route", "get", str(address))).split()
    return words[words.index("dev") + 1] if "dev" in words[:-1] else None


async def check_via(ranges: Sequence[Range], bridge: str) -> None:
    """Raise RangeError unless an address of every range is routed out of `bridge`."""
    for r in ranges:
        address = probe_address(r)
        try:
            dev = await route_device(address)
        except errors.NetworkCommandError as e:
            raise errors.RangeError(f"{r}: {address} has no route ({e}); expected it via {bridge}") from e
        if dev != bridge:
            raise errors.RangeError(f"{r}: {address} is routed via {dev}, not the lab's bridge {bridge}")
