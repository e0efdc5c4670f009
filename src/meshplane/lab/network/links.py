"""The lab's bridge and a pod's namespace and veth, made with `ip` (each object recorded in the
ledger before it is made).

The bridge carries the host-side gateway address of every cluster's pod range and the route of
its Service range; the LoadBalancer range is made local to the host (`ip route add local NET dev
lo`: the lab's "cloud load balancer" answers there, `lab/node/kubeproxy.py`), so that every lab
address is routed into the bridge or to the host itself and none out of the machine
(`make_bridge` checks both before and after with `ip route get`). The host routes between
the lab's bridges: IPv4 forwarding is turned on for the bridge only (`conf.BRIDGE.forwarding`;
the host's global `ip_forward` is left as it is) and redirects off, and `firewall.guard` drops
anything forwarded from a lab bridge to a device that is not one.

A pod gets a named namespace with `lo` up and a veth: `eth0` inside with the pod IP as a /32, the
host end on the bridge. Its routes: the gateway on-link, and the lab's ranges (its own pod range
too) via the gateway, nothing else: no default route, no masquerade. Every packet a pod sends
therefore goes through the host, even to a pod on the same bridge, so kube-proxy's DNAT
(`firewall`, `lab/node/servicenat.py`) sees both directions of every connection, as on a node
whose CNI routes pods (/32 per pod, as Calico and Cilium do).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshplane.lab import errors
from meshplane.lab.network import command, names, ranges
from meshplane.lab.network import ledger as ledgers


@dataclass(frozen=True, slots=True)
class PodNet:
    netns: str
    host_if: str  # the veth's host end, on the bridge
    address: ipaddress.IPv4Interface  # eth0's, inside the namespace
    gateway: ipaddress.IPv4Address


def lab_ranges(clusters: Sequence[ranges.ClusterRanges]) -> list[ranges.Range]:
    return [r for c in clusters for r in c.all()]


async def make_bridge(ledger: ledgers.Ledger, name: str, clusters: Sequence[ranges.ClusterRanges]) -> None:
    """Make bridge `name` for `clusters`: refuse ranges that overlap each other or a host route,
    give it each pod range's gateway address, route the Service ranges into it and make the
    LoadBalancer ranges local, then check that every range goes out of it, or to the host itself
    for LoadBalancers (RangeError otherwise; the bridge stays recorded)."""
    names.ifname(name)
    every = lab_ranges(clusters)
    await ranges.check_host(every)
    await ledger.record(ledgers.Entry("link", name))
    await command.run("ip", "link", "add", "name", name, "type", "bridge", "forward_delay", "0")
    for c in clusters:
        await command.run("ip", "addr", "add", str(ranges.gateway(c.pods)), "dev", name)
    await command.run("ip", "link", "set", "dev", name, "up")
    for c in clusters:
        await command.run("ip", "route", "add", str(c.services.net), "dev", name)
        await ledger.record(ledgers.Entry("route", str(c.load_balancers.net)))
        await command.run("ip", "route", "add", "local", str(c.load_balancers.net), "dev", "lo")
    await asyncio.to_thread(_ipv4_conf, name, {"forwarding": "1", "send_redirects": "0"})
    await ranges.check_via([r for c in clusters for r in (c.pods, c.services)], name)
    await ranges.check_via([c.load_balancers for c in clusters], "lo")


def _ipv4_conf(dev: str, values: dict[str, str]) -> None:
    """Write /proc/sys/net/ipv4/conf/DEV/KEY (gone with the device: nothing to restore)."""
    for key, value in values.items():
        Path("/proc/sys/net/ipv4/conf", dev, key).write_text(value + "\n")


async def make_netns(ledger: ledgers.Ledger, name: str) -> None:
    """A named network namespace (`ip netns add`) with `lo` up."""
    await ledger.record(ledgers.Entry("netns", name))
    await command.run("ip", "netns", "add", name)
    await command.run("ip", "-n", name, "link", "set", "dev", "lo", "up")


async def attach(
    ledger: ledgers.Ledger,
    *,
    netns: str,
    host_if: str,
    bridge: str,
    pods: ranges.Range,
    ip: str,
    routes: Sequence[ranges.Range],
) -> PodNet:
    """A veth from the pod's namespace (`eth0`, address `ip` in `pods`) to `bridge` (`host_if`),
    with routes inside for `routes` (the lab's ranges) via the pod range's gateway, and nothing else."""
    names.ifname(host_if)
    address = ipaddress.IPv4Interface(f"{ip}/32")
    gateway = ranges.gateway(pods).ip
    reserved = (gateway, pods.net.network_address, pods.net.broadcast_address)
    if address.ip not in pods.net or address.ip in reserved:
        raise errors.RangeError(f"pod IP {ip} is not a pod address of {pods}")
    await ledger.record(ledgers.Entry("link", host_if))
    await command.run(
        "ip", "link", "add", "name", host_if, "type", "veth", "peer", "name", "eth0", "netns", netns
    )  # fmt: skip
    await command.run("ip", "link", "set", "dev", host_if, "master", bridge)
    await command.run("ip", "link", "set", "dev", host_if, "up")
    await command.run("ip", "-n", netns, "addr", "add", str(address), "dev", "eth0")
    await command.run("ip", "-n", netns, "link", "set", "dev", "eth0", "up")
    await command.run("ip", "-n", netns, "route", "add", str(gateway), "dev", "eth0", "scope", "link")
    for r in routes:
        await command.run("ip", "-n", netns, "route", "add", str(r.net), "via", str(gateway), "dev", "eth0")
    return PodNet(netns, host_if, address, gateway)


async def make_pod(
    ledger: ledgers.Ledger,
    *,
    lab_id: str,
    pod_key: str,
    bridge: str,
    cluster: ranges.ClusterRanges,
    ip: str,
    routes: Sequence[ranges.Range],
) -> PodNet:
    """A pod's namespace (named after `lab_id` and `pod_key`) attached to the lab's bridge."""
    netns = names.netns(lab_id, pod_key)
    await make_netns(ledger, netns)
    host_if = names.host_veth(lab_id, pod_key)
    return await attach(
        ledger, netns=netns, host_if=host_if, bridge=bridge, pods=cluster.pods, ip=ip, routes=routes
    )
