"""Response bytes built by concatenation: each resource is serialized once and shared by every stream.

Protobuf's wire format lets a message be written as the concatenation of its fields, and a
repeated field as the concatenation of its elements. So the bytes of one resource inside a
`DiscoveryResponse` (field `resources`) or a `DeltaDiscoveryResponse` (field `resources`, a
`Resource{name, version, resource}`) are computed once per resource and reused by every
stream, and a response is `header + b"".join(parts)`. Only the small header (version, type, nonce)
is serialized per stream. The server registers the ADS methods with no response serializer,
so grpc sends these bytes as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from envoy.service.discovery.v3 import discovery_pb2

from meshplane.xds import resources


class _Entry:
    __slots__ = ("delta", "resource", "sotw")

    def __init__(self, resource: resources.Resource, sotw: bytes) -> None:
        self.resource = resource  # kept so that its id() is not reused while cached
        self.sotw = sotw
        self.delta: bytes | None = None


class Encoder:
    """Wire bytes per `Resource` object and per shared resource tuple.

    Used from the generation thread and, for small endpoint-only pushes, from the event loop: a
    race between them only frames a resource twice (entries are immutable and checked by identity).

    The generator hands out the same `Resource` objects to every proxy (and across pushes when a
    resource did not change), so entries are keyed by object identity, which is cheaper than any
    content key. Two generations (push versions) are kept: an entry not used during the current
    or the previous push is dropped.
    """

    def __init__(self) -> None:
        self._cur: dict[int, _Entry] = {}
        self._prev: dict[int, _Entry] = {}
        self._bodies: dict[tuple[int, bool], tuple[tuple[resources.Resource, ...], bytes]] = {}
        self._prev_bodies: dict[tuple[int, bool], tuple[tuple[resources.Resource, ...], bytes]] = {}
        self._label = ""
        self.encoded = 0  # resources framed so far (the sharing is visible in tests)

    def begin(self, label: str) -> None:
        """Start a new generation (a push version)."""
        if label == self._label:
            return
        self._label = label
        self._prev, self._cur = self._cur, {}
        self._prev_bodies, self._bodies = self._bodies, {}

    def _entry(self, r: resources.Resource) -> _Entry:
        key = id(r)
        entry = self._cur.get(key)
        if entry is not None and entry.resource is r:
            return entry
        entry = self._prev.get(key)
        if entry is None or entry.resource is not r:
            framed = discovery_pb2.DiscoveryResponse(resources=[r.body]).SerializeToString()
            entry = _Entry(r, framed)
            self.encoded += 1
        self._cur[key] = entry
        return entry

    def sotw_part(self, r: resources.Resource) -> bytes:
        return self._entry(r).sotw

    def delta_part(self, r: resources.Resource) -> bytes:
        entry = self._entry(r)
        if entry.delta is None:
            wrapped = discovery_pb2.Resource(name=r.name, version=r.version, resource=r.body)
            entry.delta = discovery_pb2.DeltaDiscoveryResponse(resources=[wrapped]).SerializeToString()
        return entry.delta

    def body(self, items: Sequence[resources.Resource], delta: bool) -> bytes:
        """All of `items` as the `resources` field; a tuple shared by many streams is joined once."""
        part = self.delta_part if delta else self.sotw_part
        if not isinstance(items, tuple):
            return b"".join(map(part, items))
        key = (id(items), delta)
        hit = self._bodies.get(key) or self._prev_bodies.get(key)
        if hit is not None and hit[0] is items:
            self._bodies[key] = hit
            return hit[1]
        data = b"".join(map(part, items))
        self._bodies[key] = (items, data)
        return data

    def __len__(self) -> int:
        return len(self._cur) + len(self._prev)


def sotw_response(
    enc: Encoder, type_url: str, version: str, nonce: str, items: Sequence[resources.Resource]
) -> bytes:
    header: bytes = discovery_pb2.DiscoveryResponse(
        version_info=version, type_url=type_url, nonce=nonce
    ).SerializeToString()
    return header + enc.body(items, delta=False)


def delta_response(
    enc: Encoder,
    type_url: str,
    version: str,
    nonce: str,
    items: Sequence[resources.Resource],
    removed: Iterable[str],
) -> bytes:
    header: bytes = discovery_pb2.DeltaDiscoveryResponse(
        system_version_info=version, type_url=type_url, nonce=nonce, removed_resources=sorted(removed)
    ).SerializeToString()
    return header + enc.body(items, delta=True)
