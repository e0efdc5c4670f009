"""Pod networks for tests, made with the lab's toolkit (meshplane.lab.network): ranges picked at
random in 198.19.0.0/16 (half of RFC 2544's benchmark range; the lab's defaults use 198.18/16)
and checked against this host's routes, a ledger per test, `ip netns exec` helpers, and a
python TCP echo server/client to run inside a namespace."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshplane.lab import errors
from meshplane.lab.network import ledger, links, names, ranges

TEST_BLOCK = "198.19"

ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    with c:
        data = c.recv(65536)
        c.sendall(b"echo:" + data)
"""
ECHO_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4])) as c:
    c.sendall(sys.argv[3].encode()); c.shutdown(socket.SHUT_WR)
    got = b""
    while chunk := c.recv(65536):
        got += chunk
print(got.decode(), end="")
"""


def require_root() -> None:
    """Skip only when not root; as root (these machines, CI) every failure to make a namespace or
    a link is a test failure."""
    if os.geteuid() != 0:
        pytest.skip("not root: no CAP_NET_ADMIN to make network namespaces and bridges")


def free_cluster(name: str, attempts: int = 50) -> ranges.ClusterRanges:
    """Three random /24s of 198.19.0.0/16 that overlap no route on this host (read now)."""
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, check=True
    ).stdout
    for _ in range(attempts):
        p, s, lb = (f"{TEST_BLOCK}.{n}.0/24" for n in random.sample(range(256), 3))
        picked = ranges.cluster_ranges(name, p, s, lb)
        try:
            ranges.validate(picked.all(), routes)
        except errors.RangeError:
            continue
        return picked
    raise AssertionError(f"no free /24s in {TEST_BLOCK}.0.0/16 after {attempts} tries: {routes}")


@dataclass
class TestLab:
    """One test's pod network: its id, ledger, bridge and cluster ranges."""

    id: str
    book: ledger.Ledger
    bridge: str
    cluster: ranges.ClusterRanges

    @property
    def gateway(self) -> str:
        return str(ranges.gateway(self.cluster.pods).ip)

    def pod_ip(self, n: int) -> str:
        return str(self.cluster.pods.net.network_address + n)

    def vip(self, n: int) -> str:
        return str(self.cluster.services.net.network_address + n)


@contextlib.asynccontextmanager
async def bridged(state: Path) -> AsyncIterator[TestLab]:
    """A bridge for free ranges, its ledger under `state`; on exit everything the ledger records is
    removed by name, and what is still there afterwards fails the test."""
    require_root()
    lab_id = names.new_lab_id()
    book = ledger.Ledger(state)
    cluster = free_cluster("cluster1")
    try:
        await links.make_bridge(book, names.bridge(lab_id), [cluster])
        yield TestLab(lab_id, book, names.bridge(lab_id), cluster)
    finally:
        recorded = ledger.read(book.path)
        await ledger.cleanup(book.path)
        assert_gone(recorded)


def assert_gone(recorded: Iterable[ledger.Entry]) -> None:
    """No namespace, link, file or folder of `recorded` exists any more."""
    netns = run("ip", "netns", "list").stdout.split()
    present = {link["ifname"] for link in json.loads(run("ip", "-j", "link", "show").stdout)}
    left = [str(e) for e in recorded if (e.kind == "netns" and e.name in netns)
            or (e.kind == "link" and e.name in present)
            or (e.kind in ("file", "dir") and Path(e.name).exists())]  # fmt: skip
    assert not left, f"left behind: {left}"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)


def ns_exec(
    netns: str, *argv: str, timeout: float = 30.0, check: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout, check=check
    )


def start_echo(netns: str, ip: str, port: int) -> subprocess.Popen[str]:
    """The echo server in `netns`, once it listens (it prints "ready")."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", ECHO_SERVER, ip, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        proc.wait()
        raise AssertionError(f"echo server in {netns} did not start (printed {line!r})")
    return proc


def echo(
    netns: str, host: str, port: int, text: str, timeout: float = 3.0
) -> subprocess.CompletedProcess[str]:
    """Send `text` from `netns` to host:port; stdout is what came back."""
    return ns_exec(netns, sys.executable, "-c", ECHO_CLIENT, host, str(port), text, str(timeout))


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill a process this test started (by its PID) and reap it."""
    proc.kill()
    proc.wait(timeout=10)
