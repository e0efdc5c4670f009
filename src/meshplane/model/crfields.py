"""Typed reads from an Istio config object (a CR dict), each failure naming the object and the
field path (`spec.servers[1].hosts[0]`); the object's apiVersion/kind/metadata check.

Shared by the config packages (networking.istio.io in networking/, security.istio.io in policy/),
which are siblings and may not import each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshplane import errors


class ConfigError(errors.MeshplaneError, ValueError):
    """An invalid config object; the message names the object and the field path."""

    def __init__(self, ref: str, path: str, problem: str) -> None:
        self.ref = ref  # `Kind namespace/name`
        self.path = path  # `spec.servers[0].port.number`
        self.problem = problem
        super().__init__(f"{ref}: {path}: {problem}" if path else f"{ref}: {problem}")


@dataclass(frozen=True, slots=True)
class Meta:
    kind: str
    name: str
    namespace: str
    created: str = ""  # metadata.creationTimestamp (RFC 3339), '' when absent

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def meta(
    obj: Mapping[str, Any],
    kind: str,
    group: str,
    versions: tuple[str, ...],
    default_namespace: str = "default",
) -> tuple[Meta, dict[str, Any]]:
    """Check apiVersion/kind and return (meta, spec); errors name the object as far as it is known."""
    if not isinstance(obj, Mapping):
        raise ConfigError(kind, "", f"must be an object, got {type(obj).__name__}")
    md = obj.get("metadata")
    name = md.get("name") if isinstance(md, Mapping) else None
    namespace = md.get("namespace") if isinstance(md, Mapping) else None
    ref = f"{kind} {namespace or default_namespace}/{name or '?'}"
    r = Reader(ref)
    api_version = r.text(obj, "apiVersion", "", required=True)
    got_group, _, version = api_version.partition("/")
    if got_group != group or version not in versions:
        raise r.fail("apiVersion", f"must be {group}/{'|'.join(versions)}, got {api_version!r:.60}")
    if obj.get("kind") != kind:
        raise r.fail("kind", f"must be {kind}, got {obj.get('kind')!r:.40}")
    metadata = r.obj(obj, "metadata", "", required=True)
    name = r.text(metadata, "name", "metadata", required=True)
    namespace = r.text(metadata, "namespace", "metadata") or default_namespace
    created = metadata.get("creationTimestamp")
    spec = r.obj(obj, "spec", "", required=True)
    return Meta(kind, name, namespace, str(created) if created else ""), spec


# protobuf Duration as Istio's CRDs accept it (`1.5s`, `100ms`, `1m`, `1h`)
_DURATION = re.compile(r"^(\d+(\.\d+)?)(ms|s|m|h)$")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Reader:
    """Reads fields of one object; `ref` names the object in every error."""

    ref: str

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(self.ref, path, problem)

    def obj(self, parent: Mapping[str, Any], key: str, path: str, required: bool = False) -> dict[str, Any]:
        value = parent.get(key)
        p = _join(path, key)
        if value is None:
            if required:
                raise self.fail(p, "is required")
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(p, f"must be an object, got {_kind(value)}")
        return dict(value)

    def items(self, parent: Mapping[str, Any], key: str, path: str, required: bool = False) -> list[Any]:
        value = parent.get(key)
        p = _join(path, key)
        if value is None:
            if required:
                raise self.fail(p, "is required")
            return []
        if not isinstance(value, list):
            raise self.fail(p, f"must be a list, got {_kind(value)}")
        if required and not value:
            raise self.fail(p, "must not be empty")
        return value

    def text(self, parent: Mapping[str, Any], key: str, path: str, required: bool = False) -> str:
        value = parent.get(key)
        p = _join(path, key)
        if value is None:
            if required:
                raise self.fail(p, "is required")
            return ""
        if not isinstance(value, str):
            raise self.fail(p, f"must be a string, got {_kind(value)}")
        if required and not value:
            raise self.fail(p, "must not be empty")
        return value

    def texts(
        self, parent: Mapping[str, Any], key: str, path: str, required: bool = False
    ) -> tuple[str, ...]:
        items = self.items(parent, key, path, required)
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{_join(path, key)}[{i}]", f"must be a non-empty string, got {_kind(item)}")
            out.append(item)
        return tuple(out)

    def port(self, parent: Mapping[str, Any], key: str, path: str, required: bool = False) -> int:
        value = parent.get(key)
        p = _join(path, key)
        if value is None:
            if required:
                raise self.fail(p, "is required")
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise self.fail(p, f"must be an integer in 1-65535, got {value!r:.40}")
        return value

    def integer(self, parent: Mapping[str, Any], key: str, path: str, lo: int, hi: int) -> int | None:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(_join(path, key), f"must be an integer in {lo}-{hi}, got {value!r:.40}")
        return value

    def duration(self, parent: Mapping[str, Any], key: str, path: str, minimum: float = 0.0) -> float | None:
        """Seconds of a duration field (None when absent); below `minimum` is refused."""
        if parent.get(key) is None:
            return None
        text = self.text(parent, key, path)
        found = _DURATION.match(text)
        if not found:
            raise self.fail(_join(path, key), f"must be a duration like 1.5s or 100ms, got {text!r:.40}")
        seconds = float(found.group(1)) * _SCALE[found.group(3)]
        if seconds < minimum:
            raise self.fail(_join(path, key), f"must be at least {minimum * 1000:g}ms, got {text!r:.40}")
        return seconds

    def boolean(self, parent: Mapping[str, Any], key: str, path: str) -> bool:
        value = parent.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(_join(path, key), f"must be a boolean, got {_kind(value)}")
        return value

    def number(self, parent: Mapping[str, Any], key: str, path: str, lo: float, hi: float) -> float | None:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise self.fail(_join(path, key), f"must be a number in {lo:g}-{hi:g}, got {value!r:.40}")
        return float(value)

    def only(
        self,
        obj: Mapping[str, Any],
        path: str,
        known: Iterable[str],
        unsupported: Iterable[str] = (),
    ) -> None:
        """Refuse keys of `obj` this project does not implement: `unsupported` are Istio fields
        meshplane does not generate (refused, never silently ignored), anything else not in `known`
        is not a field of the kind at all (Istio's validation refuses unknown fields too)."""
        known_set = set(known)
        unsupported_set = set(unsupported)
        for key in obj:
            if key in known_set:
                continue
            where = _join(path, str(key))
            if key in unsupported_set:
                raise self.fail(where, "is not supported by meshplane")
            raise self.fail(where, "unknown field")

    def labels(self, parent: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
        raw = self.obj(parent, key, path)
        for k, v in raw.items():
            if not isinstance(v, str):
                raise self.fail(f"{_join(path, key)}.{k}", f"must be a string, got {_kind(v)}")
        return raw


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
