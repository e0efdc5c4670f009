"""The DNS proxy's answers (pure): the NameTable as lookups, and DNS messages in and out.

As Istio's agent (pkg/dns/server/name_table.go and dns.go `LocalDNSServer`): every host answers
under its full name, and a Kubernetes entry (`shortname`, `namespace`) also as `name.namespace`,
`name.namespace.svc` and, in the pod's own namespace, `name`; each of those also with every search
domain of the pod's resolv.conf appended (what glibc asks first with `ndots:5`). A known name gets
its A (IPv4) or AAAA (IPv6) records with a 30 s TTL, authoritative; another query type for a known
name gets an empty NOERROR answer. An unknown name is not answered here (the caller forwards it).
Only the DNS wire format this needs is implemented (RFC 1035 §4: one question, no compression in
questions, answers pointing at the question's name).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TTL = 30  # Istio's defaultTTLInSeconds
TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
RCODE_SERVFAIL, RCODE_FORMERR = 2, 1
_QR, _AA, _RD, _RA = 0x8000, 0x0400, 0x0100, 0x0080


class DnsFormatError(ValueError):
    """A message that is not one well-formed DNS query."""


@dataclass(frozen=True, slots=True)
class Question:
    id: int
    flags: int
    name: str  # lower case, no trailing dot
    qtype: int
    qclass: int
    end: int  # offset just past the question


def parse_query(data: bytes) -> Question:
    if len(data) < 12:
        raise DnsFormatError("shorter than a DNS header")
    qid, flags, qdcount = struct.unpack("!HHH", data[:6])
    if flags & _QR or qdcount != 1:
        raise DnsFormatError("not a query with exactly one question")
    labels: list[str] = []
    i = 12
    while True:
        if i >= len(data):
            raise DnsFormatError("question name runs past the message")
        n = data[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0:
            raise DnsFormatError("compressed question name")
        labels.append(data[i : i + n].decode("ascii", "replace").lower())
        i += n
    if i + 4 > len(data):
        raise DnsFormatError("question type and class missing")
    qtype, qclass = struct.unpack("!HH", data[i : i + 4])
    return Question(qid, flags, ".".join(labels), qtype, qclass, i + 4)


def _header(q: Question, rcode: int, answers: int, authoritative: bool) -> bytes:
    flags = _QR | (q.flags & _RD) | _RA | (_AA if authoritative else 0) | (q.flags & 0x7800) | rcode
    return struct.pack("!HHHHHH", q.id, flags, 1, answers, 0, 0)


def error_response(data: bytes, q: Question, rcode: int) -> bytes:
    """An answer with no records and `rcode` (SERVFAIL when no upstream could answer)."""
    return _header(q, rcode, 0, False) + data[12 : q.end]


def answer(data: bytes, q: Question, ips: Sequence[str]) -> bytes:
    want = {TYPE_A: 4, TYPE_AAAA: 6}.get(q.qtype) if q.qclass == CLASS_IN else None
    records = b""
    count = 0
    for ip in ips:
        addr = ipaddress.ip_address(ip)
        if addr.version != want:
            continue
        packed = addr.packed
        records += struct.pack("!HHHIH", 0xC00C, q.qtype, CLASS_IN, TTL, len(packed)) + packed
        count += 1
    return _header(q, 0, count, True) + data[12 : q.end] + records


@dataclass(frozen=True, slots=True)
class Lookup:
    names: Mapping[str, tuple[str, ...]]

    def resolve(self, name: str) -> tuple[str, ...] | None:
        return self.names.get(name.lower().rstrip("."))


def build(table: Any, namespace: str, search: Iterable[str]) -> Lookup:
    """A NameTable message (agent/ndsproto.py) as lookups for a pod in `namespace`."""
    domains = [d.lower().strip(".") for d in search if d.strip(".")]
    names: dict[str, tuple[str, ...]] = {}
    for host, info in sorted(table.table.items()):
        ips = tuple(info.ips)
        aliases = [host.lower()]
        if info.shortname and info.namespace:
            base = f"{info.shortname}.{info.namespace}".lower()
            aliases += [base, f"{base}.svc"]
            if info.namespace == namespace:
                aliases.append(info.shortname.lower())
        for a in aliases:
            names.setdefault(a, ips)
            for d in domains:
                names.setdefault(f"{a}.{d}", ips)
    return Lookup(names)


def search_domains(resolv_conf: str) -> list[str]:
    """The `search` line of a resolv.conf (the last one wins, as in glibc)."""
    out: list[str] = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if words and words[0] in ("search", "domain"):
            out = words[1:]
    return out


def nameservers(resolv_conf: str) -> list[str]:
    """The `nameserver` addresses of a resolv.conf, in order."""
    return [
        w[1]
        for w in (line.split() for line in resolv_conf.splitlines())
        if len(w) >= 2 and w[0] == "nameserver"
    ]
