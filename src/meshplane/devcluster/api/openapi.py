"""OpenAPI documents: v3 (an index of group-versions, one document per group-version) and the
single Swagger 2.0 document at /openapi/v2, both built from the same component schemas.

kubectl reads them to compute strategic merge patches (x-kubernetes-patch-merge-key/strategy on
the component schemas) and to learn that the server honours `fieldValidation` (a PATCH operation
with that parameter and x-kubernetes-group-version-kind in `paths`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from meshplane.devcluster.api import openapi_pb
from meshplane.devcluster.schema import resources, schemas
from meshplane.runtime.jsonobj import Obj

_PARAMS = {
    name: {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in (
        "dryRun",
        "fieldManager",
        "fieldValidation",
        "pretty",
        "labelSelector",
        "fieldSelector",
        "resourceVersion",
        "resourceVersionMatch",
        "limit",
        "continue",
        "watch",
        "timeoutSeconds",
        "allowWatchBookmarks",
        "gracePeriodSeconds",
        "propagationPolicy",
        "force",
    )
}


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(schemas.REF_PREFIX):
            out.add(ref[len(schemas.REF_PREFIX) :])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def _closure(sch: Snapshot, roots: list[str]) -> dict[str, Obj]:
    out: dict[str, Obj] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        comp = sch.component(name)
        if comp is None:
            continue
        out[name] = comp
        found: set[str] = set()
        _refs(comp, found)
        todo.extend(found - out.keys())
    return out


def _operation_prefix(rt: resources.ResourceType) -> str:
    """`CoreV1Namespaced`, `RbacAuthorizationV1`: as kube-apiserver's installer names operations
    (listCoreV1NamespacedPod, readAppsV1NamespacedDeploymentScale), unique across groups."""
    group = (rt.group or "core").removesuffix(".k8s.io")
    words = "".join(w[:1].upper() + w[1:] for w in group.replace("-", ".").split("."))
    return f"{words}{rt.version[:1].upper()}{rt.version[1:]}" + ("Namespaced" if rt.namespaced else "")


def _op(
    rt: resources.ResourceType, action: str, verb: str, params: list[str], sub: str = "", suffix: str = ""
) -> Obj:
    g, v, kind = rt.subresource_kind(sub) if sub else (rt.group, rt.version, rt.kind)
    schema_name = resources.SUBRESOURCE_SCHEMAS.get(sub, rt.schema_name)
    return {
        "operationId": f"{verb}{_operation_prefix(rt)}{rt.kind}{suffix}",
        "parameters": [_PARAMS[p] for p in params],
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {"schema": {"$ref": schemas.REF_PREFIX + (schema_name or "")}}
                },
            }
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": kind},
    }


def _paths(rt: resources.ResourceType) -> Obj:
    prefix = "/" + gv_path(rt.group, rt.version)
    coll = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    item = coll + "/{name}"
    write = ["dryRun", "fieldManager", "fieldValidation", "pretty"]
    out: Obj = {
        coll: {
            "get": _op(
                rt,
                "list",
                "list",
                [
                    "labelSelector",
                    "fieldSelector",
                    "limit",
                    "continue",
                    "resourceVersion",
                    "resourceVersionMatch",
                    "watch",
                    "timeoutSeconds",
                    "allowWatchBookmarks",
                ],
            ),
            "post": _op(rt, "post", "create", write),
            "delete": _op(
                rt,
                "deletecollection",
                "deleteCollection",
                ["dryRun", "gracePeriodSeconds", "propagationPolicy", "labelSelector", "fieldSelector"],
            ),
        },
        item: {
            "get": _op(rt, "get", "read", ["pretty"]),
            "put": _op(rt, "put", "replace", write),
            "patch": _op(rt, "patch", "patch", [*write, "force"]),
            "delete": _op(rt, "delete", "delete", ["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
        },
    }
    for sub in rt.subresources:
        t = sub.title()
        out[f"{item}/{sub}"] = {
            "get": _op(rt, "get", "read", ["pretty"], sub, t),
            "put": _op(rt, "put", "replace", write, sub, t),
            "patch": _op(rt, "patch", "patch", [*write, "force"], sub, t),
        }
    return out


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the documents are built from, taken on the event loop so that building them in a
    thread never races with a CRD being added or removed."""

    stamp: tuple[int, int]
    types: tuple[resources.ResourceType, ...]
    group_versions: dict[str, list[str]]
    components: dict[str, Obj]

    def component(self, name: str) -> Obj | None:
        return self.components.get(name)


V2_REF_PREFIX = "#/definitions/"
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")


def to_v2(node: Any) -> Any:
    """An OpenAPI v3 component schema -> a Swagger 2.0 definition, following kube-apiserver's
    ToStructuralOpenAPIV2 (kubernetes staging/src/k8s.io/apiextensions-apiserver/pkg/controller/
    openapi/v2/conversion.go): the junctors allOf/anyOf/oneOf/not are dropped; a nullable schema
    loses `nullable`, its type, items and properties, and is no longer `required` by its parent;
    x-kubernetes-preserve-unknown-fields drops items and properties; an array left without items
    loses its type.  A `$ref` wrapped in a one-element allOf (how v3 carries a $ref with siblings)
    becomes a plain `$ref` pointing at #/definitions/, as Kubernetes' own v2 document has it."""
    if isinstance(node, list):
        return [to_v2(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: Obj = {}
    for k, v in node.items():
        if k in _JUNCTORS or k == "nullable":
            continue
        if k == "$ref" and isinstance(v, str):
            out[k] = v.replace(schemas.REF_PREFIX, V2_REF_PREFIX)
        elif k == "properties" and isinstance(v, dict):
            out[k] = {name: to_v2(sub) for name, sub in v.items()}
        elif k in ("items", "additionalProperties"):
            out[k] = to_v2(v)
        else:
            out[k] = v
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict) and "$ref" in all_of[0]:
        out["$ref"] = str(all_of[0]["$ref"]).replace(schemas.REF_PREFIX, V2_REF_PREFIX)
    if node.get("nullable") is True:
        for k in ("type", "items", "properties"):
            out.pop(k, None)
    if node.get("x-kubernetes-preserve-unknown-fields") is True:
        out.pop("items", None)
        out.pop("properties", None)
    if out.get("type") == "array" and "items" not in out:
        del out["type"]
    props = node.get("properties")
    if isinstance(props, dict) and isinstance(out.get("required"), list):
        nullable = {n for n, p in props.items() if isinstance(p, dict) and p.get("nullable") is True}
        out["required"] = [r for r in out["required"] if r not in nullable]
    addl = node.get("additionalProperties")
    if isinstance(addl, dict) and addl.get("nullable") is True:
        out.pop("required", None)
    if out.get("required") == []:
        del out["required"]
    return out


# v3 gives Quantity as oneOf string/number, which v2 cannot say; Kubernetes' v2 document types it string
_V2_TYPES: dict[str, Obj] = {"io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"}}

_V2_PATH_PARAMS = {
    n: {"name": n, "in": "path", "required": True, "type": "string", "uniqueItems": True}
    for n in ("name", "namespace")
}


def _v2_op(op: Obj, path: str) -> Obj:
    params = [{k: v for k, v in p.items() if k != "schema"} | {"type": "string"} for p in op["parameters"]]
    params += [_V2_PATH_PARAMS[n] for n in ("namespace", "name") if "{" + n + "}" in path]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    return op | {
        "parameters": params,
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "responses": {
            "200": {"description": "OK", "schema": {"$ref": ref.replace(schemas.REF_PREFIX, V2_REF_PREFIX)}}
        },
    }


class OpenApi:
    """Builds and caches documents; the cache is keyed by the registry/schema generation."""

    def __init__(self, reg: resources.Registry, sch: schemas.Schemas, git_version: str) -> None:
        self._reg = reg
        self._sch = sch
        self._git_version = git_version
        self._cache: dict[tuple[tuple[int, int], str], tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        """Call on the event loop; cheap (the component dicts are shared, never mutated)."""
        stamp = (self._reg.generation, self._sch.generation)
        comps = dict(self._sch.builtin())
        comps.update(self._sch.crd_all())
        return Snapshot(stamp, tuple(self._reg), self._reg.group_versions(), comps)

    def document(self, snap: Snapshot, group: str, version: str) -> tuple[bytes, str] | None:
        """(JSON bytes, hash) of one group-version's document, None if not served. Thread-safe."""
        key = (snap.stamp, gv_path(group, version))
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        rts = sorted(
            (rt for rt in snap.types if rt.group == group and rt.version == version and rt.schema_name),
            key=lambda r: r.plural,
        )
        if not rts and version not in snap.group_versions.get(group, []):
            return None
        paths: Obj = {}
        for rt in rts:
            paths.update(_paths(rt))
        roots = [rt.schema_name for rt in rts]
        roots += sorted(
            {
                resources.SUBRESOURCE_SCHEMAS[s]
                for rt in rts
                for s in rt.subresources
                if s in resources.SUBRESOURCE_SCHEMAS
            }
        )
        roots += [
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
            "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        ]
        doc = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": self._git_version},
            "paths": paths,
            "components": {"schemas": _closure(snap, roots)},
        }
        raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        digest = hashlib.sha512(raw).hexdigest()[:128].upper()
        with self._lock:
            for old in [k for k in self._cache if k[0] != snap.stamp]:
                del self._cache[old]
            self._cache[key] = (raw, digest)
        return raw, digest

    def document_v2(self, snap: Snapshot) -> tuple[bytes, str]:
        """(JSON bytes, ETag) of the Swagger 2.0 document: every served kind, every component. The
        ETag is quoted, as kube-apiserver sends it. Thread-safe; cached per snapshot stamp."""
        key = (snap.stamp, "v2")
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        paths: Obj = {}
        for rt in sorted(snap.types, key=lambda r: (r.group, r.version, r.plural)):
            if not rt.schema_name:
                continue
            for path, ops in _paths(rt).items():
                paths[path] = {verb: _v2_op(op, path) for verb, op in ops.items()}
        doc = {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": self._git_version},
            "paths": paths,
            "definitions": {
                name: to_v2(comp) | _V2_TYPES.get(name, {}) for name, comp in sorted(snap.components.items())
            },
        }
        raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        etag = '"' + hashlib.sha512(raw).hexdigest()[:128].upper() + '"'
        with self._lock:
            for old in [k for k in self._cache if k[0] != snap.stamp]:
                del self._cache[old]
            self._cache[key] = (raw, etag)
        return raw, etag

    def document_v2_pb(self, snap: Snapshot) -> tuple[bytes, str]:
        """(gnostic openapi.v2.Document bytes, ETag); the ETag is the JSON document's, as
        kube-apiserver serves one ETag for both encodings.  Raises openapi_pb.EncodeError."""
        key = (snap.stamp, "v2pb")
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        raw, etag = self.document_v2(snap)
        out = (openapi_pb.encode(json.loads(raw)), etag)
        with self._lock:
            if all(k[0] == snap.stamp for k in self._cache):
                self._cache[key] = out
        return out

    def index(self, snap: Snapshot) -> Obj:
        paths: Obj = {}
        for group, versions in snap.group_versions.items():
            for v in versions:
                doc = self.document(snap, group, v)
                if doc is None:
                    continue
                path = gv_path(group, v)
                paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={doc[1]}"}
        return {"paths": paths}
