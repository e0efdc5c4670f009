"""Field ownership (metadata.managedFields) and server-side apply, as kube-apiserver does them.

Kubernetes: staging/src/k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager (and its internal/
package) on top of sigs.k8s.io/structured-merge-diff (fieldpath, merge/update.go);
https://kubernetes.io/docs/reference/using-api/server-side-apply/.

- A field set is a set of paths; a path element is kept in its FieldsV1 key form: `f:name` (a
  field), `k:{"name":"app"}` (an associative-list element, keys from x-kubernetes-list-map-keys,
  else the strategic merge key), `v:"x"` (a set-list element), `i:0` (never produced: other lists
  are atomic and owned whole).
- Every write records who changed what: an Update entry (manager from `fieldManager`, else the
  User-Agent's prefix) gains the fields it added or changed; other managers lose them.
- Apply: the applied configuration's fields become the applier's; a field another manager owns
  with a different value is a conflict (409) unless `force`; fields the applier owned before, no
  longer applies and nobody else owns are removed.
- Apiversion/kind/name/namespace/uid/resourceVersion/generation/creationTimestamp/managedFields
  are never owned (internal/stripmeta.go); neither is `status` on the main resource of a kind with
  a status subresource, nor anything but `status` through the status subresource (the kinds'
  ResetFieldsStrategy).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from meshplane.devcluster import errors
from meshplane.devcluster.schema import resources, schemas
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

Path = tuple[str, ...]
FieldSet = set[Path]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"  # fieldmanager/internal/skipnonapplied.go, lastapplied

_STRIPPED: frozenset[Path] = frozenset(
    {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        *(
            ("f:metadata", f"f:{k}")
            for k in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "generation",
                "managedFields",
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            )
        ),
    }
)


@dataclass(frozen=True)
class Manager:
    """A manager's identity (fieldmanager/internal/managedfields.go BuildManagerIdentifier): apply
    managers are not told apart by apiVersion."""

    manager: str
    operation: str
    api_version: str
    subresource: str = ""

    def printed(self) -> str:
        """As conflict messages name it (internal/conflict.go printManager)."""
        out = json.dumps(self.manager)
        if self.subresource:
            out += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            out += f" using {self.api_version}"
        return out


def default_manager(user_agent: str) -> str:
    """kube-apiserver's default for writes without fieldManager: the User-Agent up to its first
    '/', at most 128 characters (endpoints/handlers/rest.go prefixFromUserAgent)."""
    return user_agent.split("/", 1)[0][:128]


def check_manager(name: str, *, apply: bool, force: bool) -> None:
    """The PatchOptions/UpdateOptions checks (apimachinery/pkg/apis/meta/v1/validation)."""
    problems: list[tuple[str, str, str]] = []
    if apply and not name:
        problems.append(("FieldValueRequired", "fieldManager", "Required value: is required for apply patch"))
    if len(name) > 128:
        problems.append(("FieldValueTooLong", "fieldManager", "Too long: may not be more than 128 bytes"))
    if any(not c.isprintable() for c in name):
        problems.append(
            (
                "FieldValueInvalid",
                "fieldManager",
                f"Invalid value: {json.dumps(name)}: must only contain printable characters",
            )
        )
    if force and not apply:
        problems.append(
            ("FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch")
        )
    if problems:
        kind = "PatchOptions" if apply or force else "UpdateOptions"
        raise errors.invalid(kind, "meta.k8s.io", "", problems)


# paths


def path_string(path: Path) -> str:
    """fieldpath.Path.String(): `.data.key`, `.spec.containers[name="app"].image`, `[=x]`."""
    out = []
    for el in path:
        tag, body = el[:1], el[2:]
        if tag == "f":
            out.append("." + body)
        elif tag == "k":
            keys = json.loads(body)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]")
        elif tag == "v":
            out.append("[=" + body + "]")
        else:
            out.append("[" + body + "]")
    return "".join(out)


# Defaults of list-map key fields, used when an element leaves them out (structured-merge-diff
# typed/helpers.go keyedAssociativeListItemToPathElement takes the schema default; the dev
# cluster's OpenAPI lacks these `+default` markers from k8s.io/api core/v1 types.go).
KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}


def _key(item: Obj, keys: list[str]) -> str:
    ident = {k: item.get(k, KEY_DEFAULTS.get(k)) for k in sorted(keys) if k in item or k in KEY_DEFAULTS}
    return "k:" + json.dumps(ident, separators=(",", ":"))


class Fields:
    """Field sets of objects, by the kind's OpenAPI schema."""

    def __init__(self, sch: schemas.Schemas) -> None:
        self.sch = sch

    def _resolve(self, schema: Obj | None) -> Obj:
        return (self.sch.resolve(schema) if schema else None) or {}

    def list_keys(self, schema: Obj) -> tuple[str, list[str]]:
        """('map', keys) | ('set', []) | ('atomic', []) for a list schema."""
        keys = schema.get("x-kubernetes-list-map-keys")
        if isinstance(keys, list) and keys:
            return "map", [str(k) for k in keys]
        strategy = str(schema.get("x-kubernetes-patch-strategy", "")).split(",")
        mk = schema.get("x-kubernetes-patch-merge-key")
        if "merge" in strategy and mk:
            return "map", [str(mk)]
        if schema.get("x-kubernetes-list-type") == "set" or "merge" in strategy:
            return "set", []
        return "atomic", []

    def of(self, obj: Obj, schema: Obj | None, subresource: str = "", has_status: bool = False) -> FieldSet:
        out: FieldSet = set()
        self._walk(obj, schema, (), out)
        out -= _STRIPPED
        if subresource == "status":
            out = {p for p in out if p[:1] == ("f:status",)}
        elif has_status:
            out = {p for p in out if p[:1] != ("f:status",)}
        return out

    def _walk(self, v: Any, schema: Obj | None, prefix: Path, out: FieldSet) -> None:
        s = self._resolve(schema)
        if isinstance(v, dict):
            if not v or s.get("x-kubernetes-map-type") == "atomic":
                if prefix:
                    out.add(prefix)
                return
            props = s.get("properties") or {}
            addl = s.get("additionalProperties")
            for k, sub in v.items():
                child = props.get(k) if k in props else (addl if isinstance(addl, dict) else None)
                self._walk(sub, child, (*prefix, f"f:{k}"), out)
        elif isinstance(v, list):
            kind, keys = self.list_keys(s)
            items = s.get("items") if isinstance(s.get("items"), dict) else None
            if kind == "map" and v and all(isinstance(e, dict) for e in v):
                for e in v:
                    p = (*prefix, _key(e, keys))
                    out.add(p)
                    if e:
                        self._walk(e, items, p, out)
            elif kind == "set" and all(not isinstance(e, (dict, list)) for e in v) and v:
                for e in v:
                    out.add((*prefix, "v:" + json.dumps(e, separators=(",", ":"))))
            else:
                out.add(prefix)
        else:
            out.add(prefix)


# values at paths


_MISSING = object()


def _child(cur: Any, el: str) -> Any:
    tag, body = el[:1], el[2:]
    if tag == "f":
        return cur.get(body, _MISSING) if isinstance(cur, dict) else _MISSING
    if not isinstance(cur, list):
        return _MISSING
    if tag == "k":
        keys = json.loads(body)
        for e in cur:
            if isinstance(e, dict) and all(e.get(k, KEY_DEFAULTS.get(k)) == v for k, v in keys.items()):
                return e
        return _MISSING
    if tag == "v":
        want = json.loads(body)
        return want if want in cur else _MISSING
    i = int(body)
    return cur[i] if 0 <= i < len(cur) else _MISSING


def value_at(obj: Any, path: Path) -> Any:
    cur = obj
    for el in path:
        cur = _child(cur, el)
        if cur is _MISSING:
            return _MISSING
    return cur


def remove(obj: Obj, path: Path) -> None:
    """Remove the field, list element or set value at path (nothing when it is absent)."""
    parent = value_at(obj, path[:-1])
    el = path[-1]
    tag, body = el[:1], el[2:]
    if tag == "f" and isinstance(parent, dict):
        parent.pop(body, None)
    elif isinstance(parent, list):
        target = _child(parent, el)
        if target is not _MISSING:
            parent.remove(target)


# FieldsV1


def encode(fs: FieldSet) -> Obj:
    """A field set as FieldsV1 JSON: nested `f:`/`k:`/`v:` keys; `.` marks a member with children."""
    root: Obj = {}
    for p in sorted(fs):
        node = root
        for el in p:
            node = node.setdefault(el, {})
    for p in fs:
        node = root
        for el in p:
            node = node[el]
        if any(k != "." for k in node):
            node["."] = {}
    return root


def decode(tree: Any, prefix: Path = ()) -> FieldSet:
    out: FieldSet = set()
    if not isinstance(tree, dict):
        return out
    for k, sub in tree.items():
        if k == ".":
            if prefix:
                out.add(prefix)
            continue
        p = (*prefix, str(k))
        if not isinstance(sub, dict) or not sub:
            out.add(p)
        else:
            out |= decode(sub, p)
    return out


# managedFields


def read(obj: Obj | None) -> dict[Manager, tuple[FieldSet, str]]:
    """The object's managedFields: manager -> (fields, time)."""
    out: dict[Manager, tuple[FieldSet, str]] = {}
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict):
            continue
        op = str(e.get("operation", ""))
        m = Manager(
            str(e.get("manager", "")),
            op,
            str(e.get("apiVersion", "")) if op == UPDATE else "",
            str(e.get("subresource", "") or ""),
        )
        prev = out.get(m, (set(), ""))[0]
        out[m] = (prev | decode(e.get("fieldsV1")), str(e.get("time", "")))
    return out


def write(obj: Obj, managers: dict[Manager, tuple[FieldSet, str]], api_version: str) -> None:
    entries: list[Obj] = []
    for m, (fs, when) in managers.items():
        if not fs:
            continue
        e: Obj = {"manager": m.manager, "operation": m.operation, "apiVersion": m.api_version or api_version}
        if when:
            e["time"] = when
        e["fieldsType"] = "FieldsV1"
        e["fieldsV1"] = encode(fs)
        if m.subresource:
            e["subresource"] = m.subresource
        entries.append(e)
    meta = obj.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def _parents(fs: FieldSet) -> FieldSet:
    """Every proper prefix of a path in fs: the members that have children (one pass, so large
    objects such as CRDs with big schemas stay linear)."""
    return {p[:i] for p in fs for i in range(1, len(p))}


class FieldManager:
    """Records ownership on writes and performs server-side apply for one resource type."""

    def __init__(self, sch: schemas.Schemas, rt: resources.ResourceType, subresource: str) -> None:
        self.fields = Fields(sch)
        self.rt = rt
        self.sub = subresource
        self.schema = sch.component(rt.schema_name) if rt.schema_name else None

    def _set(self, obj: Obj) -> FieldSet:
        return self.fields.of(obj, self.schema, self.sub, self.rt.has_status)

    def _managers(self, live: Obj | None) -> dict[Manager, tuple[FieldSet, str]]:
        managers = read(live)
        if live is not None and not managers:
            # an object written before anyone tracked ownership (internal/capmanagers.go,
            # "before-first-apply"): its fields belong to a placeholder Update manager
            fs = self.fields.of(live, self.schema, "", self.rt.has_status)
            managers[Manager(BEFORE_FIRST_APPLY, UPDATE, self.rt.api_version)] = (fs, "")
        return managers

    def _last_applied(self, live: Obj | None) -> FieldSet:
        """The fields of the object's kubectl.kubernetes.io/last-applied-configuration."""
        raw = (((live or {}).get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
        try:
            doc = json.loads(raw) if isinstance(raw, str) and raw else None
        except ValueError:
            return set()
        return (
            self.fields.of(doc, self.schema, self.sub, self.rt.has_status) if isinstance(doc, dict) else set()
        )

    def update(self, old: Obj | None, new: Obj, manager: str, now: float) -> None:
        """Record an Update by manager on new (in place): it owns what it added or changed.

        managedFields in the written object are the ownership to start from when they are given
        and decode (kubectl's client-side to server-side apply migration patches them); `[]`
        clears them (fieldmanager.go Update, isResetManagedFields); absent, the live object's."""
        given = (new.get("metadata") or {}).get("managedFields")
        if given == []:
            new["metadata"].pop("managedFields", None)
            return
        old_set = self._set(old) if old is not None else set()
        new_set = self._set(new)
        managers = read(new) if given and read(new) else (read(old) if old is not None else {})
        changed: FieldSet = set()
        inner = _parents(new_set)
        for p in new_set:
            before = value_at(old, p) if old is not None else _MISSING
            if before is _MISSING or (p not in inner and before != value_at(new, p)):
                changed.add(p)
        gone = old_set - new_set
        me = Manager(manager, UPDATE, self.rt.api_version, self.sub)
        out: dict[Manager, tuple[FieldSet, str]] = {}
        for m, (fs, when) in managers.items():
            out[m] = ((fs - changed - gone), when)
        mine = out.get(me, (set(), ""))[0] | changed
        if changed or me in out:
            out[me] = (mine, rfc3339.format(now) if changed else out.get(me, (set(), ""))[1])
        write(new, out, self.rt.api_version)

    def apply(self, live: Obj | None, config: Obj, manager: str, force: bool, now: float, merged: Obj) -> Obj:
        """The object after manager applies config (merged: config already merged onto live by
        the kind's list keys); 409 on conflicts unless force."""
        if not isinstance(config, dict):
            raise errors.bad_request("the applied configuration is not an object")
        config = copy.deepcopy(config)
        (config.get("metadata") or {}).pop("managedFields", None)
        applied = self._set(config)
        managers = self._managers(live)
        me = Manager(manager, APPLY, "", self.sub)
        conflicts: list[tuple[Manager, Path]] = []
        applied_inner = _parents(applied)
        for m, (fs, _when) in managers.items():
            if m == me:
                continue
            for p in sorted(applied & fs):
                if p in applied_inner:
                    continue
                if value_at(live, p) != value_at(config, p):
                    conflicts.append((m, p))
        if conflicts and not force and manager == "kubectl":
            # kubectl's own apply takes over what client-side apply last applied
            # (fieldmanager/internal/lastappliedmanager.go allowedConflictsFromLastApplied)
            allowed = self._last_applied(live)
            conflicts = [(m, p) for m, p in conflicts if p not in allowed]
            force = not conflicts
        if conflicts and not force:
            raise conflict_error(conflicts)
        taken = {p for _m, p in conflicts}
        out: dict[Manager, tuple[FieldSet, str]] = {}
        for m, (fs, when) in managers.items():
            if m != me:
                out[m] = (fs - taken, when)
        previous = managers.get(me, (set(), ""))[0]
        others: FieldSet = set().union(*(fs for fs, _w in out.values()))
        keep = others | _parents(others) | applied | applied_inner
        result = copy.deepcopy(merged)
        for p in sorted(previous - applied, key=len):
            if p in keep:
                continue
            remove(result, p)
        out[me] = (applied, rfc3339.format(now))
        write(result, out, self.rt.api_version)
        return result


def conflict_error(conflicts: list[tuple[Manager, Path]]) -> errors.ApiError:
    """409 as internal/conflict.go NewConflictError words it, one cause per field."""
    causes: list[Obj] = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {m.printed()}", "field": path_string(p)}
        for m, p in conflicts
    ]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        msg = f"Apply failed with 1 conflict: conflict with {m.printed()}: {path_string(p)}"
    else:
        by: dict[str, list[Path]] = {}
        for m, p in conflicts:
            by.setdefault(m.printed(), []).append(p)
        lines: list[str] = []
        for name in sorted(by):
            lines.append(f"conflicts with {name}:")
            lines.extend(f"- {path_string(p)}" for p in by[name])
        msg = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return errors.ApiError(409, msg, "Conflict", causes=causes)
