"""Build and serialize each resource once per (push version, resource, proxy view); share it.

Two levels:
- resources: key = (type, name, view). Within a push version a key is built once. Across versions
  the latest entry of every key is kept with the inputs it was built from, so a new version
  reuses the previous `Resource` (same bytes, same version) when its inputs are the same objects
  or equal; only changed resources are rebuilt, however many EDS-only pushes came in between.
  That map is an LRU bounded by `max_resources` (resources of deleted services age out);
- derived values: anything computed once per push version and shared by proxies with the same view
  (a set of resources, an index of endpoints by address), kept for a few recent versions.
Thread-safe: the server may generate from worker threads; a race only builds the same value twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf import message

from meshplane.xds import resources

T = TypeVar("T")
Deps = tuple[object, ...]
Entry = tuple[Deps, resources.Resource]


def same(a: Deps, b: Deps) -> bool:
    return len(a) == len(b) and all(x is y or x == y for x, y in zip(a, b, strict=True))


@dataclass(slots=True)
class _Generation:
    resources: dict[Hashable, Entry] = field(default_factory=dict)
    derived: dict[Hashable, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Stats:
    built: int = 0  # resources built and serialized
    reused: int = 0  # taken from an earlier version because their inputs did not change
    hits: int = 0  # found in the same version
    evicted: int = 0  # dropped from the cross-version map (least recently used)


class ResourceCache:
    def __init__(self, generations: int = 3, max_resources: int = 100_000) -> None:
        self._max_gens = max(1, generations)
        self._max_resources = max(1, max_resources)
        self._gens: OrderedDict[str, _Generation] = OrderedDict()
        self._latest: OrderedDict[Hashable, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = Stats()

    def _gen(self, version: str) -> _Generation:
        # caller holds the lock
        gen = self._gens.get(version)
        if gen is None:
            gen = self._gens[version] = _Generation()
            while len(self._gens) > self._max_gens:
                self._gens.popitem(last=False)
        return gen

    def resource(
        self, version: str, key: Hashable, deps: Deps, build: Callable[[], tuple[str, message.Message]]
    ) -> resources.Resource:
        """The packed resource for `key`, built by `build() -> (name, message)` only when needed."""
        with self._lock:
            gen = self._gen(version)
            entry = gen.resources.get(key)
            if entry is not None:
                self.stats.hits += 1
                return entry[1]
            old = self._latest.get(key)
            if old is not None and same(old[0], deps):
                gen.resources[key] = old
                self._latest.move_to_end(key)
                self.stats.reused += 1
                return old[1]
        name, msg = build()
        res = resources.pack(name, msg)
        with self._lock:
            self.stats.built += 1
            entry = self._gen(version).resources.setdefault(key, (deps, res))
            self._latest[key] = entry
            self._latest.move_to_end(key)
            while len(self._latest) > self._max_resources:
                self._latest.popitem(last=False)
                self.stats.evicted += 1
            return entry[1]

    def derived(self, version: str, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            gen = self._gen(version)
            if key in gen.derived:
                value: T = gen.derived[key]
                return value
        value = build()
        with self._lock:
            result: T = self._gen(version).derived.setdefault(key, value)
            return result

    def versions(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._gens)
