"""The three patch formats Kubernetes accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
and strategic merge patch (list merge keys and directives from the OpenAPI schema)."""

from __future__ import annotations

import copy
from typing import Any

from meshplane.devcluster import errors
from meshplane.devcluster.schema import schemas
from meshplane.runtime.jsonobj import Obj

# JSON merge patch


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# JSON patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise errors.PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict):
            if p not in cur:
                raise errors.PatchError(f"path component {p!r} not found")
            cur = cur[p]
        elif isinstance(cur, list):
            cur = cur[_index(cur, p, False)]
        else:
            raise errors.PatchError(f"cannot descend into {p!r}")
    return cur, parts[-1]


def _index(lst: list[Any], p: str, adding: bool) -> int:
    if p == "-" and adding:
        return len(lst)
    if not p.isdigit():
        raise errors.PatchError(f"invalid array index {p!r}")
    i = int(p)
    if i > len(lst) or (i == len(lst) and not adding):
        raise errors.PatchError(f"array index {i} out of range")
    return i


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent, last = _parent(doc, parts)
    if isinstance(parent, dict):
        if last not in parent:
            raise errors.PatchError(f"path {'/'.join(parts)!r} not found")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    raise errors.PatchError("path not found")


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise errors.PatchError("cannot remove the whole document")
    parent, last = _parent(doc, parts)
    if isinstance(parent, dict):
        if last not in parent:
            raise errors.PatchError(f"cannot remove missing path {'/'.join(parts)!r}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, False))
    raise errors.PatchError("path not found")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _parent(doc, parts)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, True), value)
    else:
        raise errors.PatchError("path not found")
    return doc


def json_patch(doc: Any, ops: list[Any]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        if (
            not isinstance(op, dict)
            or not isinstance(op.get("op"), str)
            or not isinstance(op.get("path"), str)
        ):
            raise errors.PatchError(f"invalid operation {op!r}")
        kind, path = op["op"], _pointer(op["path"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise errors.PatchError(f"operation {kind} needs a value")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            if not path:
                doc = copy.deepcopy(op["value"])
            else:
                _remove(doc, path)
                doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise errors.PatchError(f"operation {kind} needs from")
            value = _remove(doc, _pointer(src)) if kind == "move" else copy.deepcopy(_get(doc, _pointer(src)))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise errors.PatchError(f"test failed at {op['path']!r}")
        else:
            raise errors.PatchError(f"unknown operation {kind!r}")
    return doc


# strategic merge patch

_DIRECTIVE = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DEL_PRIM = "$deleteFromPrimitiveList/"


class Strategic:
    def __init__(self, sch: schemas.Schemas) -> None:
        self.sch = sch

    def apply(self, original: Obj, patch: Obj, schema: Obj | None) -> Obj:
        out = self._map(original, patch, schema)
        if out is None:
            raise errors.PatchError("the patch deletes the whole object")
        return out

    def _props(self, schema: Obj | None) -> Obj:
        s = self.sch.resolve(schema) if schema else None
        return (s or {}).get("properties") or {}

    def _addl(self, schema: Obj | None) -> Obj | None:
        s = self.sch.resolve(schema) if schema else None
        a = (s or {}).get("additionalProperties")
        return a if isinstance(a, dict) else None

    def _map(self, original: Any, patch: Obj, schema: Obj | None) -> Obj | None:
        directive = patch.get(_DIRECTIVE)
        if directive == "delete":
            return None
        if directive == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != _DIRECTIVE}
        if directive is not None and directive != "merge":
            raise errors.PatchError(f"unknown patch directive {directive!r}")
        out: Obj = copy.deepcopy(original) if isinstance(original, dict) else {}
        props, addl = self._props(schema), self._addl(schema)
        orders: dict[str, list[Any]] = {}
        for k, v in patch.items():
            if k in (_DIRECTIVE, _RETAIN):
                continue
            if k.startswith(_ORDER):
                if not isinstance(v, list):
                    raise errors.PatchError(f"{k} must be a list")
                orders[k[len(_ORDER) :]] = v
                continue
            if k.startswith(_DEL_PRIM):
                field = k[len(_DEL_PRIM) :]
                if not isinstance(v, list):
                    raise errors.PatchError(f"{k} must be a list")
                if isinstance(out.get(field), list):
                    out[field] = [x for x in out[field] if x not in v]
                continue
            sub = props.get(k) if k in props else addl
            if v is None:
                out.pop(k, None)
            elif isinstance(v, dict):
                merged = self._map(out.get(k), v, sub)
                if merged is None:
                    out.pop(k, None)
                else:
                    out[k] = merged
            elif isinstance(v, list):
                out[k] = self._list(out.get(k), v, sub)
            else:
                out[k] = copy.deepcopy(v)
        for field, order in orders.items():
            if isinstance(out.get(field), list):
                out[field] = self._order(out[field], order, props.get(field))
        retain = patch.get(_RETAIN)
        if retain is not None:
            if not isinstance(retain, list):
                raise errors.PatchError("$retainKeys must be a list")
            out = {k: v for k, v in out.items() if k in retain}
        return out

    def _list(self, original: Any, patch: list[Any], schema: Obj | None) -> list[Any]:
        s = schema or {}
        strategy = str(s.get("x-kubernetes-patch-strategy", ""))
        key = s.get("x-kubernetes-patch-merge-key")
        items_schema = (self.sch.resolve(s) or {}).get("items") if s else None
        if any(isinstance(e, dict) and e.get(_DIRECTIVE) == "replace" for e in patch):
            return [copy.deepcopy(e) for e in patch if not (isinstance(e, dict) and _DIRECTIVE in e)]
        if "merge" not in strategy.split(","):
            return [copy.deepcopy(e) for e in patch if not (isinstance(e, dict) and e.get(_DIRECTIVE))]
        orig = list(original) if isinstance(original, list) else []
        if not key:
            result = copy.deepcopy(orig)
            for e in patch:
                if e not in result:
                    result.append(copy.deepcopy(e))
            return result
        result = copy.deepcopy(orig)
        for e in patch:
            if not isinstance(e, dict):
                raise errors.PatchError(f"list elements must be objects with merge key {key!r}")
            if key not in e:
                raise errors.PatchError(f"map: {e!r} does not contain declared merge key: {key}")
            idx = next(
                (i for i, o in enumerate(result) if isinstance(o, dict) and o.get(key) == e[key]), None
            )
            if e.get(_DIRECTIVE) == "delete":
                if idx is not None:
                    result.pop(idx)
                continue
            if idx is None:
                merged = self._map({}, e, items_schema)
                if merged is not None:
                    result.append(merged)
            else:
                merged = self._map(result[idx], e, items_schema)
                if merged is None:
                    result.pop(idx)
                else:
                    result[idx] = merged
        return result

    def _order(self, items: list[Any], order: list[Any], schema: Obj | None) -> list[Any]:
        key = (schema or {}).get("x-kubernetes-patch-merge-key")

        def ident(e: Any) -> Any:
            return e.get(key) if key and isinstance(e, dict) else repr(e)

        wanted = [(o.get(key) if key and isinstance(o, dict) else repr(o)) for o in order]
        pos = {w: i for i, w in enumerate(wanted)}
        ordered = sorted((e for e in items if ident(e) in pos), key=lambda e: pos[ident(e)])
        rest = [e for e in items if ident(e) not in pos]
        return ordered + rest


def apply(
    media_type: str,
    original: Obj,
    patch_body: Any,
    sch: schemas.Schemas,
    schema: Obj | None,
    *,
    strategic_allowed: bool,
) -> Obj:
    """Apply a decoded patch body of the given media type; 415/422 on bad patches."""
    from meshplane.devcluster.api import bodies

    try:
        if media_type == bodies.MERGE_PATCH:
            result = merge_patch(original, patch_body)
        elif media_type == bodies.JSON_PATCH:
            result = json_patch(original, patch_body)
        elif media_type in (bodies.STRATEGIC_PATCH, bodies.APPLY_PATCH):
            if media_type == bodies.STRATEGIC_PATCH and not strategic_allowed:
                raise errors.ApiError(
                    415,
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                )
            if strategic_allowed:
                result = Strategic(sch).apply(original, patch_body, schema)
            else:
                result = merge_patch(original, patch_body)
        else:
            raise errors.ApiError(415, f"unsupported patch type {media_type}")
    except errors.PatchError as e:
        raise errors.ApiError(
            422, f"the server rejected our request due to an error in our request: {e}", "Invalid"
        ) from e
    if not isinstance(result, dict):
        raise errors.ApiError(422, "the patched object is not a JSON object", "Invalid")
    return result
