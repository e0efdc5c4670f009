"""Field validation against the served schemas, as the API server's decoder and validators do.

Pass 1 (`check_fields`, before defaulting): unknown and duplicate fields, honouring
fieldValidation=Strict|Warn|Ignore (unknown fields are dropped unless Strict), and JSON types
(400 BadRequest). Pass 2 (`check_required`, after defaulting): required fields, names and labels
(422 Invalid, with causes naming each field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from meshplane.devcluster import errors
from meshplane.devcluster.schema import crds, resources, schemas
from meshplane.runtime.jsonobj import Obj

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
_DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_NAMES = ("namespaces", "services")
_ALLOWED_PUNCT = {True: " or '-'", False: ", '-' or '.'"}
_LABEL_KEY_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"


def parse_mode(value: str | None) -> str:
    if value is None or value == "":
        return WARN
    if value not in (STRICT, WARN, IGNORE):
        raise errors.bad_request(
            f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{value}"'
        )
    return value


@dataclass(slots=True)
class _Walk:
    sch: schemas.Schemas
    prune: bool
    unknown: list[str] = field(default_factory=list)
    type_errors: list[str] = field(default_factory=list)
    required: list[str] = field(default_factory=list)
    check_required: bool = False

    def walk(self, schema: Obj | None, value: Any, path: str) -> None:
        s = self.sch.resolve(schema)
        if s is None or value is None:
            return
        if s.get("x-kubernetes-int-or-string") or s.get("format") == "int-or-string":
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                self._type(path, "integer or string", value)
            return
        branches = s.get("oneOf") or s.get("anyOf")
        if branches and "type" not in s and "properties" not in s:
            if not any(_type_ok((self.sch.resolve(b) or {}).get("type"), value) for b in branches):
                self._type(path, "one of " + "/".join(str((b or {}).get("type")) for b in branches), value)
            return
        t = s.get("type")
        if t == "object" or "properties" in s:
            if not isinstance(value, dict):
                self._type(path, "object", value)
                return
            self._object(s, value, path)
        elif t == "array":
            if not isinstance(value, list):
                self._type(path, "array", value)
                return
            for i, item in enumerate(value):
                self.walk(s.get("items"), item, f"{path}[{i}]")
        elif t is not None and not _type_ok(t, value):
            self._type(path, str(t), value)

    def _object(self, s: Obj, value: Obj, path: str) -> None:
        props: Obj | None = s.get("properties")
        addl = s.get("additionalProperties")
        if self.check_required:
            for req in s.get("required") or []:
                if value.get(req) is None:
                    self.required.append(_join(path, req))
        preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
        for k in list(value):
            v = value[k]
            sub = _join(path, k)
            if props is not None and k in props:
                self.walk(props[k], v, sub)
            elif isinstance(addl, dict):
                self.walk(addl, v, sub)
            elif props is not None and not preserve and addl is not True:
                self.unknown.append(sub)
                if self.prune:
                    del value[k]

    def _type(self, path: str, want: str, value: Any) -> None:
        self.type_errors.append(f"{path or '<root>'}: expected {want}, got {_json_type(value)}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def _type_ok(t: Any, v: Any) -> bool:
    if t is None:
        return True
    if t == "string":
        return isinstance(v, str)
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    return True


def check_fields(
    sch: schemas.Schemas, rt: resources.ResourceType, obj: Obj, mode: str, duplicates: list[str] | None = None
) -> list[str]:
    """Pass 1. Returns warnings (Warn mode); raises 400 for Strict violations and wrong types."""
    comp = sch.component(rt.schema_name) if rt.schema_name else None
    w = _Walk(sch, prune=mode != STRICT)
    if comp is not None:
        w.walk(comp, obj, "")
    if w.type_errors:
        raise errors.bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
            + "; ".join(w.type_errors)
        )
    problems = [f'unknown field "{p}"' for p in w.unknown]
    problems += [f'duplicate field "{d}"' for d in (duplicates or [])]
    if problems and mode == STRICT:
        raise errors.bad_request("strict decoding error: " + ", ".join(problems))
    return problems if mode == WARN else []


def check_required(sch: schemas.Schemas, rt: resources.ResourceType, obj: Obj) -> None:
    """Pass 2: 422 Invalid naming every missing required field and malformed name or label."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes: list[tuple[str, str, str]] = []
    generate = meta.get("generateName") or ""
    if not name and not generate:
        causes.append(
            ("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")
        )
    elif name or generate:
        name = name or generate + "x"
        label = rt.key in _LABEL_NAMES
        pattern, limit = (_DNS1123_LABEL, 63) if label else (_DNS1123_SUBDOMAIN, 253)
        if rt.crd or rt.key in (
            "rbac.authorization.k8s.io/roles",
            "rbac.authorization.k8s.io/clusterroles",
            "rbac.authorization.k8s.io/rolebindings",
            "rbac.authorization.k8s.io/clusterrolebindings",
        ):
            pattern, limit = r"[^/%]+", 253  # path segment names (RBAC allows ':')
        if len(name) > limit or not re.fullmatch(pattern, name) or name in (".", ".."):
            what = "RFC 1123 label" if label else "RFC 1123 subdomain"
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: "{name}": a lowercase {what} must consist of lower case alphanumeric '
                    f"characters{_ALLOWED_PUNCT[label]}, and must start and end with an "
                    f"alphanumeric character (regex used for validation is '{pattern}')",
                )
            )
    for key, value in (meta.get("labels") or {}).items():
        if not _label_key_ok(str(key)):
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.labels",
                    f'Invalid value: "{key}": name part must consist of alphanumeric characters, '
                    "'-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not re.fullmatch(_LABEL_VALUE, value):
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.labels",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist of '
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character",
                )
            )
    comp = sch.component(rt.schema_name) if rt.schema_name else None
    if comp is not None:
        w = _Walk(sch, prune=False, check_required=True)
        w.walk(comp, obj, "")
        causes += [("FieldValueRequired", p, "Required value") for p in w.required]
    if rt.key == crds.KEY:
        causes += crds.validate(obj)
    if causes:
        raise errors.invalid(rt.kind, rt.group, meta.get("name") or "", causes)


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.fullmatch(_DNS1123_SUBDOMAIN, prefix)):
        return False
    return 0 < len(name) <= 63 and bool(re.fullmatch(_LABEL_KEY_NAME, name))
