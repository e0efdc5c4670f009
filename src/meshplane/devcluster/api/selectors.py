"""Label and field selectors, in their query-string forms and as LabelSelector objects."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.devcluster import errors
from meshplane.runtime.jsonobj import Obj

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # = != in notin exists !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and labels[self.key] in self.values
        # != and notin also match objects without the label, as in Kubernetes
        return not has or labels[self.key] not in self.values


LabelSelector = tuple[Requirement, ...]


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _check_key(key: str, whole: str) -> None:
    if not re.fullmatch(_KEY, key):
        raise errors.bad_request(f"unable to parse requirement: invalid label key {key!r} in {whole!r}")


def _check_value(v: str, whole: str) -> None:
    if len(v) > 63 or not re.fullmatch(_VALUE, v):
        raise errors.bad_request(f"unable to parse requirement: invalid label value {v!r} in {whole!r}")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h`; 400 BadRequest on a malformed selector."""
    reqs: list[Requirement] = []
    if not text.strip():
        return ()
    for raw in _split_top(text):
        part = raw.strip()
        if not part:
            raise errors.bad_request(f"unable to parse requirement: empty requirement in {text!r}")
        m = re.fullmatch(r"(\S+?)\s+(in|notin)\s*\((.*)\)", part)
        if m:
            key, op, vals = m.group(1), m.group(2), [v.strip() for v in m.group(3).split(",")]
            _check_key(key, text)
            for v in vals:
                _check_value(v, text)
            reqs.append(Requirement(key, op, frozenset(vals)))
            continue
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", part)
        if m:
            key, op, val = m.group(1), m.group(2), m.group(3)
            _check_key(key, text)
            _check_value(val, text)
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", frozenset([val])))
            continue
        if part.startswith("!"):
            _check_key(part[1:].strip(), text)
            reqs.append(Requirement(part[1:].strip(), "!exists"))
            continue
        _check_key(part, text)
        reqs.append(Requirement(part, "exists"))
    return tuple(reqs)


def label_selector_from_object(sel: Obj | None) -> LabelSelector | None:
    """A metav1.LabelSelector (matchLabels/matchExpressions). None selector matches nothing;
    an empty one matches everything, as in Kubernetes."""
    if sel is None:
        return None
    reqs = [Requirement(k, "=", frozenset([str(v)])) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in sel.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise errors.bad_request(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr.get("key", ""), op, frozenset(expr.get("values") or [])))
    return tuple(reqs)


def labels_match(selector: LabelSelector | None, labels: Mapping[str, str] | None) -> bool:
    if selector is None:
        return False
    lbl = labels or {}
    return all(r.matches(lbl) for r in selector)


# field selectors


def _get(path: str) -> Callable[[Obj], str]:
    parts = path.split(".")

    def read(obj: Obj) -> str:
        cur: Any = obj
        for p in parts:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(p)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return read


_COMMON = ("metadata.name", "metadata.namespace")
_EXTRA: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "secrets": ("type",),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "namespaces": ("status.phase",),
    "nodes": ("spec.unschedulable",),
    "replicasets": ("status.replicas",),
    "services": ("spec.clusterIP", "spec.type"),
}

FieldReq = tuple[Callable[[Obj], str], bool, str]  # (getter, equal?, value)


def parse_field_selector(text: str, plural: str, extra_fields: tuple[str, ...] = ()) -> tuple[FieldReq, ...]:
    """Parse `metadata.name=x,status.phase!=Running`; 400 for a field this resource does not support."""
    if not text.strip():
        return ()
    allowed = set(_COMMON) | set(_EXTRA.get(plural, ())) | set(extra_fields)
    out: list[FieldReq] = []
    for raw in text.split(","):
        part = raw.strip()
        m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in allowed:
            raise errors.bad_request(f"field label not supported: {field}")
        getter = _source_getter() if (plural == "events" and field == "source") else _get(field)
        out.append((getter, op != "!=", value))
    return tuple(out)


def _source_getter() -> Callable[[Obj], str]:
    def read(obj: Obj) -> str:
        return str((obj.get("source") or {}).get("component") or obj.get("reportingComponent") or "")

    return read


def fields_match(reqs: tuple[FieldReq, ...], obj: Obj) -> bool:
    return all((getter(obj) == value) == eq for getter, eq, value in reqs)
