"""RFC 6902 JSON Patch from two JSON documents (what an admission webhook returns)."""

from __future__ import annotations

from typing import Any

Op = dict[str, Any]


def escape(token: str) -> str:
    """One JSON Pointer token: `~` → `~0`, `/` → `~1` (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def diff(old: Any, new: Any, path: str = "") -> list[Op]:
    """Operations that turn `old` into `new`: per-key for objects, appends for grown lists."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[Op] = []
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": f"{path}/{escape(key)}"})
        for key, value in new.items():
            sub = f"{path}/{escape(key)}"
            if key not in old:
                ops.append({"op": "add", "path": sub, "value": value})
            else:
                ops += diff(old[key], value, sub)
        return ops
    if isinstance(old, list) and isinstance(new, list):
        if len(new) >= len(old) and new[: len(old)] == old:
            return [
                {"op": "add", "path": f"{path}/{i}", "value": v} for i, v in enumerate(new) if i >= len(old)
            ]
        if len(new) == len(old):
            ops = []
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                ops += diff(a, b, f"{path}/{i}")
            return ops
        return [{"op": "replace", "path": path, "value": new}]
    if type(old) is type(new) and old == new:
        return []
    return [{"op": "replace", "path": path, "value": new}]
