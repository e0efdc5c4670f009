"""OpenAPI component schemas: Kubernetes' own (from kubernetes-validate's bundled JSON schemas,
converted to OpenAPI v3 form) plus those CRDs declare. Used for OpenAPI documents, field
validation and strategic-merge-patch metadata."""

from __future__ import annotations

import functools
import json
import logging
from importlib import resources as importlib_resources
from typing import Any

from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

REF_PREFIX = "#/components/schemas/"
SCHEMA_VERSION = "v1.32.0-local"  # Kubernetes' API as of kubectl 1.32


def _conv(node: Any) -> Any:
    """JSON-schema (draft 2020, nullable type lists, $defs refs) -> OpenAPI v3 schema."""
    if isinstance(node, list):
        return [_conv(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: Obj = {}
    for k, v in node.items():
        if k == "$ref":
            out["$ref"] = str(v).replace("#/$defs/", REF_PREFIX)
        elif k == "type" and isinstance(v, list):
            types = [t for t in v if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
        elif k == "properties" and isinstance(v, dict):
            props = {}
            for pname, pschema in v.items():
                ps = _conv(pschema)
                if pname in ("apiVersion", "kind") and isinstance(ps, dict):
                    ps.pop("enum", None)
                props[pname] = ps
            out["properties"] = props
        elif k in ("items", "additionalProperties", "oneOf", "anyOf", "allOf", "not"):
            out[k] = _conv(v)
        else:
            out[k] = v
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    return out


@functools.lru_cache(maxsize=1)
def builtin_components() -> dict[str, Obj]:
    """Kubernetes' schemas, keyed as Kubernetes names them (io.k8s.api.core.v1.Pod). Loaded once."""
    base = importlib_resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_VERSION
    raw = json.loads((base / "_definitions.json").read_text())
    defs = raw.get("$defs") or raw.get("definitions") or {}
    out = {name: _conv(schema) for name, schema in defs.items()}
    # OpenAPI v3 as served by Kubernetes marks these two as strings with a format
    out["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {
        "type": "string",
        "format": "int-or-string",
        "x-kubernetes-int-or-string": True,
        "description": "IntOrString is a type that can hold an int32 or a string.",
    }
    out["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {
        "oneOf": [{"type": "string"}, {"type": "number"}],
        "description": "Quantity is a fixed-point representation of a number.",
    }
    return out


def crd_component_name(group: str, version: str, kind: str) -> str:
    """Kubernetes names CRD schemas by reversed group: io.istio.networking.v1.Gateway."""
    return ".".join([*reversed(group.split(".")), version, kind])


class Schemas:
    """Built-in components plus one component per served CRD version."""

    def __init__(self) -> None:
        self._builtin = builtin_components()
        self._crd: dict[str, Obj] = {}
        self._crd_gv: dict[str, tuple[str, str]] = {}  # component name -> (group, version)
        self.generation = 0

    def component(self, name: str) -> Obj | None:
        return self._crd.get(name) or self._builtin.get(name)

    def builtin(self) -> dict[str, Obj]:
        return self._builtin

    def crd_all(self) -> dict[str, Obj]:
        """A copy of the CRD component map (the schemas themselves are replaced, never mutated)."""
        return dict(self._crd)

    def crd_components(self, group: str, version: str) -> dict[str, Obj]:
        return {n: s for n, s in self._crd.items() if self._crd_gv.get(n) == (group, version)}

    def set_crd(self, group: str, version: str, kind: str, schema: Obj | None, namespaced: bool) -> str:
        name = crd_component_name(group, version, kind)
        s = (
            json.loads(json.dumps(schema))
            if schema
            else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
        assert isinstance(s, dict)
        s.setdefault("type", "object")
        props: Obj = s.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = {
            "allOf": [{"$ref": REF_PREFIX + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
        }
        s["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
        self._crd[name] = s
        self._crd_gv[name] = (group, version)
        self.generation += 1
        return name

    def drop_crd(self, group: str, version: str, kind: str) -> None:
        name = crd_component_name(group, version, kind)
        self._crd.pop(name, None)
        self._crd_gv.pop(name, None)
        self.generation += 1

    def resolve(self, schema: Obj | None) -> Obj | None:
        """Follow $ref and single-element allOf to the schema they point at, keeping extensions."""
        seen = 0
        while schema is not None and seen < 20:
            seen += 1
            ref = schema.get("$ref")
            if ref is None and len(schema.get("allOf") or []) == 1 and "$ref" in schema["allOf"][0]:
                ref = schema["allOf"][0]["$ref"]
            if ref is None:
                return schema
            target = self.component(str(ref).removeprefix(REF_PREFIX))
            if target is None:
                return None
            extra = {k: v for k, v in schema.items() if k.startswith("x-kubernetes-")}
            schema = {**target, **extra} if extra else target
        return schema
