"""Objects to and from multi-document YAML (what `--dry-run -o yaml` and `manifest generate` print)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as `|` literals, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump(obj: Any, *, sort_keys: bool = False) -> str:
    """One YAML document, keys in insertion order (or sorted, as client-go writes them)."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=sort_keys, default_flow_style=False, width=1000)


def to_yaml(objects: Iterable[dict[str, Any]]) -> str:
    """One multi-document stream, each document introduced by `---`."""
    return "".join("---\n" + dump(o) for o in objects)


def describe(obj: dict[str, Any]) -> str:
    """`Kind namespace/name` (or `Kind name` for cluster objects), for progress lines and errors."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns}/{meta.get('name')}" if ns else f"{obj.get('kind')} {meta.get('name')}"
