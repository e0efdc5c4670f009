"""lab.network on this machine, in namespaces and a bridge the test makes: two pods on one bridge
reach each other by IP and by the name in their hosts file, nothing but the lab's ranges is routed
in a pod, a range not on the bridge is refused, and a crashed maker's ledger, cleaned up from a
fresh process, leaves no namespace, link, rule or folder behind."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshplane.lab import errors
from meshplane.lab.network import ledger, links, names, ranges, resolver
from tests.support import podnet

PORT = 7007


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[podnet.TestLab]:
    async with podnet.bridged(tmp_path / "state") as made:
        yield made


def _host(r: ranges.Range, n: int) -> str:
    return str(r.net.network_address + n)


async def test_two_pods_on_one_bridge_reach_each_other(lab: podnet.TestLab) -> None:
    pods = lab.cluster.pods
    a_ip, b_ip = _host(pods, 10), _host(pods, 11)
    a = await links.make_pod(lab.book, lab_id=lab.id, pod_key="ns/a", bridge=lab.bridge, cluster=lab.cluster,
                             ip=a_ip, routes=lab.cluster.all())  # fmt: skip
    b = await links.make_pod(lab.book, lab_id=lab.id, pod_key="ns/b", bridge=lab.bridge, cluster=lab.cluster,
                             ip=b_ip, routes=lab.cluster.all())  # fmt: skip
    await resolver.write(lab.book, a.netns, namespace="ns", pod_ip=a_ip, hostname="a",
                         extra_hosts=[(b_ip, ["b.ns.svc.cluster.local", "b"])])  # fmt: skip
    assert len(a.host_if) <= 15 and a.host_if != b.host_if

    # only the lab's ranges, via the gateway: no default route out of the pod
    table = podnet.ns_exec(a.netns, "ip", "-4", "route", "show", check=True).stdout
    assert "default" not in table
    gateway = str(ranges.gateway(pods).ip)
    assert {line.split()[0] for line in table.splitlines()} == {
        gateway,
        *(str(r.net) for r in lab.cluster.all()),
    }
    assert f"via {gateway} dev eth0" in table
    # a /32: even a pod on the same bridge is reached through the host (so DNAT sees both ways)
    assert f"{a_ip}/32" in podnet.ns_exec(a.netns, "ip", "-4", "addr", "show", "eth0", check=True).stdout
    assert f"via {gateway}" in podnet.ns_exec(a.netns, "ip", "route", "get", b_ip, check=True).stdout
    # the host forwards for the lab's bridge only: its global setting is left alone
    assert podnet.run("cat", f"/proc/sys/net/ipv4/conf/{lab.bridge}/forwarding").stdout.strip() == "1"
    assert podnet.ns_exec(a.netns, "ip", "route", "get", "192.0.2.1").returncode != 0  # unreachable

    server = podnet.start_echo(b.netns, b_ip, PORT)
    try:
        by_ip = podnet.echo(a.netns, b_ip, PORT, "hello")
        assert (by_ip.returncode, by_ip.stdout) == (0, "echo:hello"), by_ip.stderr
        by_name = podnet.echo(a.netns, "b", PORT, "by-name")  # /etc/netns/NAME/hosts over /etc/hosts
        assert (by_name.returncode, by_name.stdout) == (0, "echo:by-name"), by_name.stderr
        resolv = podnet.ns_exec(a.netns, "cat", "/etc/resolv.conf", check=True).stdout
        assert resolv.startswith("search ns.svc.cluster.local svc.cluster.local cluster.local\n")
        assert "nameserver" not in resolv
        # the host reaches pods over the bridge; a closed port is refused, not routed away
        refused = podnet.echo(a.netns, b_ip, PORT + 1, "x")
        assert refused.returncode != 0 and "ConnectionRefused" in refused.stderr
    finally:
        podnet.stop(server)


async def test_ranges_not_on_the_bridge_are_refused(lab: podnet.TestLab) -> None:
    await ranges.check_via([lab.cluster.pods, lab.cluster.services], lab.bridge)  # into the bridge
    await ranges.check_via([lab.cluster.load_balancers], "lo")  # the host's own: its load balancer
    await ranges.check_host([lab.cluster.pods, lab.cluster.services], own_devices=[lab.bridge])
    # the load balancer range is the host's own now (a local route): another lab may not take it
    lbs = lab.cluster.load_balancers
    with pytest.raises(errors.RangeError, match=rf"load balancers {lbs.net} overlaps the host route 'local"):
        await ranges.check_host([lbs], own_devices=[lab.bridge])

    other = podnet.free_cluster("cluster2")
    with pytest.raises(errors.RangeError, match=rf"cluster2 pods {other.pods.net}: .* not the lab's bridge"):
        await ranges.check_via([other.pods], lab.bridge)
    # once the bridge exists its routes are on the host: another lab reusing the range is refused
    with pytest.raises(errors.RangeError, match=rf"cluster1 pods {lab.cluster.pods.net} overlaps the host"):
        await ranges.check_host([lab.cluster.pods])
    # the machine's own subnet is refused before anything is made
    own = next(r for r in ranges.parse_routes(await ranges.host_routes()) if r.dev and r.dev != "lo"
               and not r.dev.startswith("mp-") and not r.line.startswith(("local", "broadcast")))  # fmt: skip
    clash = ranges.ClusterRanges(
        "clash", ranges.Range("clash pods", own.net), other.services, other.load_balancers
    )
    with pytest.raises(errors.RangeError, match=f"clash pods {own.net} overlaps the host route"):
        await links.make_bridge(lab.book, names.bridge(names.new_lab_id()), [clash])
    with pytest.raises(errors.RangeError, match="is not a pod address"):
        gateway = str(ranges.gateway(lab.cluster.pods).ip)
        await links.attach(lab.book, netns="unused", host_if="mpunused", bridge=lab.bridge,
                           pods=lab.cluster.pods, ip=gateway, routes=[])  # fmt: skip


MAKE_AND_CRASH = """
import asyncio, os, sys
from pathlib import Path
from meshplane.lab.network import ledger, links, ranges, resolver

async def main(state, lab_id, bridge, pods, services, lbs):
    book = ledger.Ledger(Path(state))
    c = ranges.cluster_ranges("cluster1", pods, services, lbs)
    await links.make_bridge(book, bridge, [c])
    for n, key in enumerate(("ns/a", "ns/b")):
        ip = str(c.pods.net.network_address + 20 + n)
        p = await links.make_pod(
            book, lab_id=lab_id, pod_key=key, bridge=bridge, cluster=c, ip=ip, routes=c.all()
        )
        await resolver.write(book, p.netns, namespace="ns", pod_ip=ip, hostname=key)
    await book.record(ledger.Entry("chain", "MP-CRASH", table="nat", netns=p.netns))
    await links.command.run("ip", "netns", "exec", p.netns, "iptables", "-t", "nat", "-N", "MP-CRASH")
    rule = ("-p", "tcp", "--dport", "9", "-j", "MP-CRASH")
    await book.record(ledger.Entry("rule", "OUTPUT", table="nat", rule=rule, netns=p.netns))
    await links.command.run("ip", "netns", "exec", p.netns, "iptables", "-t", "nat", "-A", "OUTPUT", *rule)
    # recorded, then the crash comes before it is made
    await book.record(ledger.Entry("netns", "mp-" + lab_id + "-never"))
    print("made", flush=True)
    os._exit(70)

asyncio.run(main(*sys.argv[1:]))
"""
CLEANUP = """
import asyncio, sys
from pathlib import Path
from meshplane.lab.network import ledger
print(len(asyncio.run(ledger.cleanup(Path(sys.argv[1])))))
"""


def test_cleanup_from_the_ledger_after_a_crash(tmp_path: Path) -> None:
    podnet.require_root()
    lab_id, state = names.new_lab_id(), tmp_path / "state"
    c = podnet.free_cluster("cluster1")
    path = state / ledger.FILE
    try:
        made = subprocess.run(
            [sys.executable, "-c", MAKE_AND_CRASH, str(state), lab_id, names.bridge(lab_id),
             str(c.pods.net), str(c.services.net), str(c.load_balancers.net)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert (made.returncode, made.stdout) == (70, "made\n"), made.stderr
        recorded = ledger.read(path)
        kinds = [e.kind for e in recorded]
        assert kinds.count("netns") == 3 and kinds.count("link") == 3 and "rule" in kinds
        pod_ns = [e.name for e in recorded if e.kind == "netns"][:2]
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert all(ns in listed for ns in pod_ns)
        assert "MP-CRASH" in podnet.ns_exec(pod_ns[1], "iptables-save", "-t", "nat", check=True).stdout
        assert all(Path(e.name).exists() for e in recorded if e.kind in ("file", "dir"))

        done = subprocess.run([sys.executable, "-c", CLEANUP, str(path)], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert int(done.stdout) == len(recorded)
        assert not path.exists()
        podnet.assert_gone(recorded)
        assert names.bridge(lab_id) not in subprocess.run(["ip", "link", "show"], capture_output=True,
                                                          text=True, check=True).stdout  # fmt: skip
        # a second clean-up (lab down twice) has nothing to do
        assert asyncio.run(ledger.cleanup(path)) == []
    finally:
        asyncio.run(ledger.cleanup(path))
