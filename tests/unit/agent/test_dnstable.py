"""The DNS proxy's lookups and answers (Istio's LocalDNSServer rules), decoded independently."""

from __future__ import annotations

import socket
import struct

import pytest

from meshplane.agent import dnstable, ndsproto


def _table() -> object:
    t = ndsproto.NameTable()
    for host, ips, ns in (
        ("only2.sample.svc.cluster.local", ["10.97.0.20"], "sample"),
        ("db.other.svc.cluster.local", ["10.1.0.5", "fd00::5"], "other"),
    ):
        info = t.table[host]
        info.ips.extend(ips)
        info.registry, info.shortname, info.namespace = "Kubernetes", host.split(".")[0], ns
    return t


def _query(name: str, qtype: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", 99, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


LOOKUP = dnstable.build(
    _table(), "sample", ["sample.svc.cluster.local", "svc.cluster.local", "cluster.local"]
)


@pytest.mark.parametrize(
    ("name", "ips"),
    [
        ("only2.sample.svc.cluster.local", ("10.97.0.20",)),
        ("only2.sample.svc", ("10.97.0.20",)),
        ("only2.sample", ("10.97.0.20",)),
        ("only2", ("10.97.0.20",)),  # the pod's own namespace
        ("only2.sample.sample.svc.cluster.local", ("10.97.0.20",)),  # a search domain appended
        ("Only2.Sample.", ("10.97.0.20",)),
        ("db.other", ("10.1.0.5", "fd00::5")),
        ("db", None),  # another namespace: the short name is not ours
        ("example.org", None),
    ],
)
def test_names(name: str, ips: tuple[str, ...] | None) -> None:
    assert LOOKUP.resolve(name) == ips


def test_answers_per_type() -> None:
    data = _query("db.other")
    q = dnstable.parse_query(data)
    reply = dnstable.answer(data, q, LOOKUP.resolve(q.name) or ())
    qid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", reply[:12])
    assert (qid, flags & 0x8000, flags & 0x0400, flags & 0xF, qd, an) == (99, 0x8000, 0x0400, 0, 1, 1)
    assert reply[-4:] == socket.inet_aton("10.1.0.5") and struct.unpack("!I", reply[-10:-6])[0] == 30
    data6 = _query("db.other", qtype=28)
    reply6 = dnstable.answer(data6, dnstable.parse_query(data6), ("10.1.0.5", "fd00::5"))
    assert reply6[-16:] == socket.inet_pton(socket.AF_INET6, "fd00::5")
    mx = _query("db.other", qtype=15)
    assert struct.unpack("!H", dnstable.answer(mx, dnstable.parse_query(mx), ("10.1.0.5",))[6:8])[0] == 0


def test_malformed_queries_are_refused() -> None:
    for bad in (b"\x00" * 5, _query("a")[:-2], struct.pack("!HHHHHH", 1, 0x8000, 1, 0, 0, 0) + b"\0\0\1\0\1"):
        with pytest.raises(dnstable.DnsFormatError):
            dnstable.parse_query(bad)


def test_resolv_conf() -> None:
    text = "nameserver 10.0.0.10\nsearch a.svc.cluster.local svc.cluster.local\n"
    text += "options ndots:5\nnameserver 10.0.0.11\n"
    assert dnstable.nameservers(text) == ["10.0.0.10", "10.0.0.11"]
    assert dnstable.search_domains(text) == ["a.svc.cluster.local", "svc.cluster.local"]
