"""The agent's DNS proxy (ISTIO_META_DNS_CAPTURE=true) as the lab runs the agent: it subscribes to
the control plane's NameTable on Envoy's ADS stream and answers on 15053 (UDP and TCP) a service
that exists only in another cluster, under the pod's search path; other names go to the pod's
resolv.conf nameserver, and without one the answer is SERVFAIL. Queries are built from RFC 1035 here,
independently of the agent's code."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType

import pytest

from meshplane.model.ids import ClusterId, Hostname
from tests.support import agentproc, istiod, labpod, memsource, netaddr
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy
ONLY2 = Hostname("only2.sample.svc.cluster.local")
UPSTREAM_ANSWER = "192.0.2.53"


def query(name: str, qid: int = 0x1234, qtype: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


def answers(reply: bytes) -> tuple[int, list[str]]:
    """(rcode, A records) of a reply."""
    _, flags, qd, an, _, _ = struct.unpack("!HHHHHH", reply[:12])
    i = 12
    for _ in range(qd):
        while reply[i]:
            i += 1 + reply[i]
        i += 5
    out = []
    for _ in range(an):
        i += 2 if reply[i] & 0xC0 else len(reply[i:].split(b"\0", 1)[0]) + 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", reply[i : i + 10])
        i += 10
        if rtype == 1:
            out.append(socket.inet_ntoa(reply[i : i + rdlen]))
        i += rdlen
    return flags & 0xF, out


async def udp(host: str, port: int, msg: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(P, remote_addr=(host, port))
    try:
        transport.sendto(msg)
        return await asyncio.wait_for(got, 10)
    finally:
        transport.close()


async def tcp(host: str, port: int, msg: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(struct.pack("!H", len(msg)) + msg)
    (n,) = struct.unpack("!H", await reader.readexactly(2))
    data = await reader.readexactly(n)
    writer.close()
    return data


class Upstream(asyncio.DatagramProtocol):
    """The pod's nameserver: answers every A query with one address."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        end = data.index(b"\0", 12) + 5
        rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(UPSTREAM_ANSWER)
        head = struct.pack("!HHHHHH", struct.unpack("!H", data[:2])[0], 0x8180, 1, 1, 0, 0)
        self.t.sendto(head + data[12:end] + rr, addr)  # type: ignore[attr-defined]


@pytest.fixture
async def plane() -> AsyncIterator[istiod.Istiod]:
    src = memsource.MemorySource()
    svc = src.add_service("only2", "sample", (("http", 5000),))
    src.services[ONLY2] = dataclasses.replace(
        svc, cluster_vips=MappingProxyType({ClusterId("cluster2"): ("10.97.0.20",)})
    )
    cp = istiod.Istiod(src)
    await cp.start()
    await cp.push()
    try:
        yield cp
    finally:
        await cp.stop()


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_dns_proxy_answers_a_remote_only_service_and_forwards_the_rest(
    tmp_path: Path, plane: istiod.Istiod, delta: bool
) -> None:
    upstream_ip = netaddr.loopback_host()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Upstream, local_addr=(upstream_ip, 53)
    )
    root = labpod.write(
        tmp_path / "pod",
        token=plane.reviewer.issue("sample", "sleep"),
        root_pem=plane.mesh.root_pem,
        hosts={"istiod.istio-system.svc": plane.host},
    )
    search = "search sample.svc.cluster.local svc.cluster.local cluster.local"
    (root / "etc/resolv.conf").write_text(f"{search}\nnameserver {upstream_ip}\noptions ndots:5\n")
    ip, localhost = netaddr.loopback_host(), netaddr.loopback_host()
    env = agentproc.pod_env(
        root,
        pod="sleep-1",
        namespace="sample",
        sa="sleep",
        ip=ip,
        discovery=plane.address,
        localhost=localhost,
        extra={"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_DELTA_XDS": "true" if delta else "false"},
    )
    agent = await agentproc.start(env, root, ip, 15021)
    try:

        async def resolved(name: str) -> list[str] | None:
            try:
                rcode, ips = answers(await udp(localhost, 15053, query(name)))
            except (OSError, TimeoutError):
                return None
            return ips if rcode == 0 and ips and ips != [UPSTREAM_ANSWER] else None

        # glibc's first try for `only2.sample` with ndots:5 is the first search domain appended
        assert await wait_for(lambda: resolved("only2.sample.sample.svc.cluster.local"), 30) == ["10.97.0.20"]
        for name in ("only2.sample.svc.cluster.local", "only2.sample", "only2", "ONLY2.sample.svc"):
            assert answers(await udp(localhost, 15053, query(name))) == (0, ["10.97.0.20"]), name
        assert answers(await tcp(localhost, 15053, query("only2.sample.svc.cluster.local"))) == (
            0,
            ["10.97.0.20"],
        )
        # AAAA for a known IPv4-only name: NOERROR, no records
        assert answers(await udp(localhost, 15053, query("only2.sample", qtype=28))) == (0, [])
        # anything else is the pod's nameserver's answer
        assert answers(await udp(localhost, 15053, query("example.org"))) == (0, [UPSTREAM_ANSWER])
        # the NameTable was ACKed by the agent: the control plane sees it synced
        assert plane.ads is not None
        (entry,) = plane.ads.syncz()
        assert entry["delta"] is delta
        nds = entry["xds"]["nds"]
        assert nds["sent_nonce"] and nds["sent_nonce"] == nds["acked_nonce"]
        # the nameserver gone: SERVFAIL rather than silence
        transport.close()
        rcode, ips = answers(await udp(localhost, 15053, query("example.org", qid=7)))
        assert (rcode, ips) == (2, [])
    finally:
        transport.close()
        code = await agent.stop()
    assert code == 0
