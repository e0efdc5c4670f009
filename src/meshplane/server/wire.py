"""Response bytes built by concatenation: each resource is serialized once and shared by every stream.

Protobuf's wire format lets a message be written as the concatenation of its fields, and a
repeated field as the concatenation of its elements. So the bytes of one resource inside a
`DiscoveryResponse` (field `resources`) or a `DeltaDiscoveryResponse` (field `resources`, a
`Resource{name, version, resource}`) are computed once per (type, name, version) and reused by
every stream, and a response is `header + b"".join(parts)`. Only the small header (version, type,
nonce) is serialized per stream. The server registers the ADS methods with no response serializer,
so grpc sends these bytes as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from envoy.service.discovery.v3 import discovery_pb2

from meshplane.xds import resources


@dataclass(slots=True)
class _Entry:
    sotw: bytes
    delta: bytes | None
    used: int


@dataclass(slots=True)
class _Body:
    items: tuple[resources.Resource, ...]  # kept so that its id() is not reused while cached
    data: bytes
    used: int


class Encoder:
    """Per-resource wire bytes, cached by (type, name, version); not thread-safe (one gen thread)."""

    def __init__(self, keep_generations: int = 2) -> None:
        self._cache: dict[tuple[str, str, str], _Entry] = {}
        # joined bodies of whole resource tuples (the generator shares one tuple per proxy view)
        self._bodies: dict[tuple[str, bool, int], _Body] = {}
        self._generation = 0
        self._keep = keep_generations
        self._label = ""
        self.encoded = 0  # resources serialized so far (the sharing is visible in tests)

    def begin(self, label: str) -> None:
        """Start a new generation (a push version); entries unused for `keep` generations go."""
        if label == self._label:
            return
        self._label = label
        self._generation += 1
        floor = self._generation - self._keep
        stale = [k for k, e in self._cache.items() if e.used < floor]
        for k in stale:
            del self._cache[k]
        for b in [k for k, e in self._bodies.items() if e.used < floor]:
            del self._bodies[b]

    def _entry(self, type_url: str, r: resources.Resource) -> _Entry:
        key = (type_url, r.name, r.version)
        entry = self._cache.get(key)
        if entry is None:
            framed = discovery_pb2.DiscoveryResponse(resources=[r.body]).SerializeToString()
            entry = _Entry(sotw=framed, delta=None, used=self._generation)
            self._cache[key] = entry
            self.encoded += 1
        else:
            entry.used = self._generation
        return entry

    def sotw_part(self, type_url: str, r: resources.Resource) -> bytes:
        return self._entry(type_url, r).sotw

    def delta_part(self, type_url: str, r: resources.Resource) -> bytes:
        entry = self._entry(type_url, r)
        if entry.delta is None:
            wrapped = discovery_pb2.Resource(name=r.name, version=r.version, resource=r.body)
            entry.delta = discovery_pb2.DeltaDiscoveryResponse(resources=[wrapped]).SerializeToString()
        return entry.delta

    def body(self, type_url: str, items: Sequence[resources.Resource], delta: bool) -> bytes:
        """All of `items` as the `resources` field; a tuple shared by many streams is joined once."""
        part = self.delta_part if delta else self.sotw_part
        if not isinstance(items, tuple):
            return b"".join(part(type_url, r) for r in items)
        key = (type_url, delta, id(items))
        hit = self._bodies.get(key)
        if hit is not None and hit.items is items:
            hit.used = self._generation
            return hit.data
        data = b"".join(part(type_url, r) for r in items)
        self._bodies[key] = _Body(items, data, self._generation)
        return data

    def __len__(self) -> int:
        return len(self._cache)


def sotw_response(
    enc: Encoder, type_url: str, version: str, nonce: str, items: Sequence[resources.Resource]
) -> bytes:
    header: bytes = discovery_pb2.DiscoveryResponse(
        version_info=version, type_url=type_url, nonce=nonce
    ).SerializeToString()
    return header + enc.body(type_url, items, delta=False)


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
    return header + enc.body(type_url, items, delta=True)
