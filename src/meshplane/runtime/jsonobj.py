"""Reading decoded JSON (API objects, webhook requests) without crashing on unexpected types:
each helper returns its argument when it has the expected shape, else an empty one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]


def as_obj(value: Any) -> Obj:
    """`value` if it is a JSON object (a dict), else {}."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """`value` if it is a JSON array (a list), else []."""
    return value if isinstance(value, list) else []


def as_mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is any mapping, else an empty one (read-only view for untrusted input)."""
    return value if isinstance(value, Mapping) else {}
