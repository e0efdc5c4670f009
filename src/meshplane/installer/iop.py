"""IstioOperator input: read files, merge them in order, apply `--set PATH=VALUE` overlays.

Merging follows Istio's overlay rules: mappings merge key by key, a list in a later file replaces
the earlier list, and an explicit null removes the key. `--set` uses istioctl's path syntax
(`a.b.c`, `list[0]`, `list[name:foo]`, `\\.` for a literal dot) and value typing: the schema's type
for that path when meshplane knows it, otherwise Istio's rule (int, float, bool, else string).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshplane.installer import errors, schema

API_VERSION = "install.istio.io/v1alpha1"
KIND = "IstioOperator"
MAX_INPUT_BYTES = 4 * 1024 * 1024


@dataclass
class Operator:
    """The merged user input: metadata and the spec tree (not yet merged with the profile)."""

    name: str = ""
    namespace: str = ""
    spec: dict[str, Any] = field(default_factory=dict)


def _load_yaml(text: str, source: str) -> list[Any]:
    try:
        return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise errors.ConfigError([errors.Issue(source, f"invalid YAML{where}: {e.problem or e}")]) from e
    except yaml.YAMLError as e:
        raise errors.ConfigError([errors.Issue(source, f"invalid YAML: {e}")]) from e


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a silent last-one-wins hides mistakes)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if isinstance(key, list | dict):
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be scalars", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_document(text: str | bytes, source: str) -> Operator:
    """One IstioOperator file (`source` names it in errors); structure is checked later by `validate`."""
    if len(text) > MAX_INPUT_BYTES:
        raise errors.ConfigError([errors.Issue(source, f"input is larger than {MAX_INPUT_BYTES} bytes")])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise errors.ConfigError([errors.Issue(source, "input is not UTF-8 text")]) from e
    docs = _load_yaml(text, source)
    if len(docs) != 1:
        raise errors.ConfigError(
            [errors.Issue(source, f"expected exactly one IstioOperator document, found {len(docs)}")]
        )
    doc = docs[0]
    if not isinstance(doc, dict):
        raise errors.ConfigError([errors.Issue(source, "an IstioOperator document must be a mapping")])
    issues = schema.validate(doc, schema.DOCUMENT, "")
    if doc.get("apiVersion") != API_VERSION:
        issues.append(errors.Issue("apiVersion", f"must be {API_VERSION!r}, got {doc.get('apiVersion')!r}"))
    if doc.get("kind") != KIND:
        issues.append(errors.Issue("kind", f"must be {KIND!r}, got {doc.get('kind')!r}"))
    if issues:
        raise errors.ConfigError([errors.Issue(f"{source}: {i.path}", i.message) for i in issues])
    meta = doc.get("metadata") or {}
    return Operator(
        name=meta.get("name") or "", namespace=meta.get("namespace") or "", spec=doc.get("spec") or {}
    )


def merge(base: Any, overlay: Any) -> Any:
    """Istio's overlay: mappings merge, lists and scalars replace, null deletes."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)


def merge_operators(ops: Iterable[Operator]) -> Operator:
    out = Operator()
    for op in ops:
        out.name = op.name or out.name
        out.namespace = op.namespace or out.namespace
        out.spec = merge(out.spec, op.spec)
    return out


# ---- --set PATH=VALUE -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Select:
    """A list element chosen by `[key:value]`."""

    key: str
    value: str


PathElem = str | int | Select


def parse_path(path: str) -> list[PathElem]:
    """`components.ingressGateways[name:x].k8s.env[0]` → ['components', 'ingressGateways', Select, ...]."""
    elems: list[PathElem] = []
    buf: list[str] = []
    i = 0

    def flush() -> None:
        if buf:
            elems.append("".join(buf))
            buf.clear()

    while i < len(path):
        c = path[i]
        if c == "\\" and i + 1 < len(path):
            buf.append(path[i + 1])
            i += 2
            continue
        if c == ".":
            if not buf and (not elems or path[i - 1] != "]"):
                raise ValueError(f"empty path segment in {path!r}")
            flush()
        elif c == "[":
            flush()
            end = path.find("]", i)
            if end < 0:
                raise ValueError(f"unclosed '[' in {path!r}")
            inner = path[i + 1 : end]
            if inner.isdigit():
                elems.append(int(inner))
            elif ":" in inner and inner.split(":", 1)[0]:
                k, v = inner.split(":", 1)
                elems.append(Select(k, v))
            else:
                raise ValueError(f"bad list selector [{inner}] in {path!r} (use [N] or [key:value])")
            i = end
        else:
            buf.append(c)
        i += 1
    flush()
    if not elems or path.endswith("."):
        raise ValueError(f"empty path in {path!r}")
    return elems


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def istio_parse_value(raw: str) -> Any:
    """istioctl's ParseValue: int, then float, then Go's bool spellings, else the string."""
    if _INT.fullmatch(raw):
        return int(raw)
    if _FLOAT.fullmatch(raw):
        return float(raw)
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    return raw.replace("\\,", ",")


def typed_value(raw: str, kind: str | None) -> Any:
    """Type a --set value by the schema's kind at that path (Istio's guessing when unknown)."""
    if kind == "str":
        return raw.replace("\\,", ",")
    if kind == "bool":
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        return raw  # reported as a type error by validation, with the path
    if kind in ("int", "int_or_str"):
        return int(raw) if _INT.fullmatch(raw) else raw
    return istio_parse_value(raw)


def _leaf_path(elems: list[PathElem], tree: Mapping[str, Any]) -> list[str | int]:
    """Schema path with selectors resolved to indexes (0 when the element does not exist yet)."""
    out: list[str | int] = []
    node: Any = tree
    for e in elems:
        if isinstance(e, Select):
            idx = _find(node, e) if isinstance(node, list) else -1
            out.append(max(idx, 0))
            node = node[idx] if idx >= 0 else None
        elif isinstance(e, int):
            out.append(e)
            node = node[e] if isinstance(node, list) and e < len(node) else None
        else:
            out.append(e)
            node = node.get(e) if isinstance(node, dict) else None
    return out


def _find(items: list[Any], sel: Select) -> int:
    for i, item in enumerate(items):
        if isinstance(item, dict) and str(item.get(sel.key)) == sel.value:
            return i
    return -1


def apply_set(spec: dict[str, Any], flag: str) -> dict[str, Any]:
    """Return `spec` with one `PATH=VALUE` applied (PATH relative to spec; a leading `spec.` is allowed)."""
    path, sep, raw = flag.partition("=")
    path = path.strip()
    if not sep or not path:
        raise errors.ConfigError([errors.Issue(f"--set {flag}", "expected PATH=VALUE")])
    if path.startswith("spec."):
        path = path[len("spec.") :]
    try:
        elems = parse_path(path)
    except ValueError as exc:
        raise errors.ConfigError([errors.Issue(f"--set {flag}", str(exc))]) from exc
    if not isinstance(elems[0], str):
        raise errors.ConfigError([errors.Issue(f"--set {flag}", "a path must start with a field name")])
    value = typed_value(raw.strip(), schema.leaf_kind(_leaf_path(elems, spec)))
    out = copy.deepcopy(spec)
    node: Any = out
    for i, e in enumerate(elems):
        last = i == len(elems) - 1
        nxt: PathElem | None = None if last else elems[i + 1]
        fresh: Any = [] if isinstance(nxt, int | Select) else {}
        where = "spec." + path
        if isinstance(e, str):
            if not isinstance(node, dict):
                raise errors.ConfigError(
                    [errors.Issue(where, f"cannot set field {e!r} inside a non-mapping")]
                )
            if last:
                node[e] = value
            else:
                if not isinstance(node.get(e), dict | list):
                    node[e] = fresh
                node = node[e]
            continue
        if not isinstance(node, list):
            raise errors.ConfigError([errors.Issue(where, "a list selector applied to a non-list")])
        if isinstance(e, Select):
            idx = _find(node, e)
            if idx < 0:
                raise errors.ConfigError([errors.Issue(where, f"no list element with {e.key}={e.value}")])
        else:
            idx = e
            if idx > len(node):
                raise errors.ConfigError(
                    [errors.Issue(where, f"index {idx} is past the end of a list of {len(node)}")]
                )
            if idx == len(node):
                node.append(fresh if not last else None)
        if last:
            node[idx] = value
        else:
            if not isinstance(node[idx], dict | list):
                node[idx] = fresh
            node = node[idx]
    return out


def apply_sets(spec: dict[str, Any], flags: Iterable[str]) -> dict[str, Any]:
    issues: list[errors.Issue] = []
    for flag in flags:
        try:
            spec = apply_set(spec, flag)
        except errors.ConfigError as e:
            issues += e.issues
    if issues:
        raise errors.ConfigError(issues)
    return spec
