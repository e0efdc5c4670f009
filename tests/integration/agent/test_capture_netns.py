"""istio-iptables in a network namespace made by the test: the chains appear in iptables-save,
an app's connection to an outside address lands on Envoy's 15001, the proxy's own (uid 1337)
does not, and istio-clean-iptables takes it all away again."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import podnet

MESHPLANE = str(Path(sys.executable).with_name("meshplane"))
# The injector's args (webhooks/sidecar.py), exactly.
INJECTED = ["-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*",
            "-d", "15090,15021,15020", "--log_output_level=default:info"]  # fmt: skip
POD_NET = ipaddress.ip_network("198.18.0.0/24")  # benchmark range (RFC 2544), only inside the namespace
POD_IP, OUTSIDE = "198.18.0.1", "198.18.0.2"

LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 15001)); s.listen(16)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    print("accepted", flush=True)
    c.close()
"""
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], 80), timeout=1.5).close()"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


@pytest.fixture
def netns() -> Iterator[str]:
    assert shutil.which("ip"), "iproute2 is not installed (.ci/run installs it)"
    assert shutil.which("iptables-restore"), "iptables is not installed (.ci/run installs it)"
    for line in _run("ip", "-4", "route", "show").stdout.splitlines():
        dest = line.split()[0]
        if dest != "default" and ipaddress.ip_network(dest, strict=False).overlaps(POD_NET):
            pytest.fail(f"{POD_NET} is routed on this host ({line}); pick another test range")
    podnet.require_root()  # the one skip: only an unprivileged run lacks CAP_NET_ADMIN
    name = f"mp-ipt-{uuid.uuid4().hex[:8]}"
    made = _run("ip", "netns", "add", name, check=False)
    if made.returncode != 0:
        pytest.fail(f"root cannot make a network namespace: {made.stderr.strip()}")
    try:
        _ns(name, "ip", "link", "set", "lo", "up")
        # a veth pair inside the namespace (no dummy module here): OUTSIDE is routed out of eth0 and
        # nobody answers there, so only a captured connection can succeed
        _ns(name, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer")
        _ns(name, "ip", "addr", "add", f"{POD_IP}/24", "dev", "eth0")
        _ns(name, "ip", "link", "set", "eth0", "up")
        _ns(name, "ip", "link", "set", "eth0-peer", "up")
        yield name
    finally:
        _run("ip", "netns", "delete", name, check=False)


def _ns(name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("ip", "netns", "exec", name, *argv, check=check)


def _connects(name: str, *, uid: int | None = None) -> bool:
    as_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] if uid is not None else []
    return _ns(name, *as_user, sys.executable, "-c", CONNECT, OUTSIDE, check=False).returncode == 0


def _istio_chains(name: str) -> set[str]:
    save = _ns(name, "iptables-save").stdout
    return {line[1:].split()[0] for line in save.splitlines() if line.startswith(":ISTIO_")}


def test_capture_redirects_apps_not_the_proxy_and_cleans_up(netns: str) -> None:
    listener = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        assert not _connects(netns), "connected to the outside address before any capture"

        done = _ns(netns, MESHPLANE, "agent", "istio-iptables", *INJECTED, check=False)
        assert done.returncode == 0, done.stderr
        assert _istio_chains(netns) == {
            "ISTIO_INBOUND",
            "ISTIO_IN_REDIRECT",
            "ISTIO_OUTPUT",
            "ISTIO_REDIRECT",
        }

        assert _connects(netns), "the app's connection was not captured"
        assert listener.stdout.readline().strip() == "accepted"
        assert not _connects(netns, uid=1337), "the proxy's own connection (uid 1337) was captured"

        again = _ns(netns, MESHPLANE, "agent", "istio-iptables", *INJECTED, check=False)
        assert again.returncode != 0 and "already exist" in again.stderr

        clean = _ns(netns, MESHPLANE, "agent", "istio-clean-iptables", check=False)
        assert clean.returncode == 0, clean.stderr
        assert _istio_chains(netns) == set()
        assert "ISTIO" not in _ns(netns, "iptables-save").stdout
        assert not _connects(netns), "still captured after istio-clean-iptables"
    finally:
        listener.kill()
        listener.wait()


def test_bad_flags_apply_nothing(netns: str) -> None:
    for bad in (["-i", "10.0.0.0/33"], ["-d", "15090,abc"], ["--no-such-flag"]):
        done = _ns(netns, MESHPLANE, "agent", "istio-iptables", *INJECTED, *bad, check=False)
        assert done.returncode != 0
        assert bad[0] in done.stderr
        assert _istio_chains(netns) == set()
