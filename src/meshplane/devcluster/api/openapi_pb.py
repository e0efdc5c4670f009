"""The Swagger 2.0 document as gnostic's `openapi.v2.Document` protobuf, the encoding client-go asks
for with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.

The message classes are generated from gnostic's openapiv2/OpenAPIv2.proto (see `_gen/`); field
names and numbers come from there.  The mapping from JSON follows gnostic's `NewDocument`
(openapiv2/OpenAPIv2.go): maps become repeated `Named*` pairs, `x-` keys become `vendor_extension`
entries, `$ref` is the `_ref` field, oneof wrappers (ParametersItem, Parameter, NonBodyParameter,
ResponseValue, AdditionalPropertiesItem, ItemsItem, TypeItem) are picked by the JSON's shape, and
free-form values (`default`, `enum`, `example`, extensions) are `Any{yaml}` holding YAML text
(JSON, which is YAML).  `decode` is the exact inverse, used by the tests.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import descriptor, message

from meshplane.devcluster.api._gen import OpenAPIv2_pb2 as pb
from meshplane.runtime.jsonobj import Obj

# what clients ask for: kubectl and client-go still send the deprecated `@` form; kube-openapi
# (pkg/handler/handler.go) accepts both and answers with the current one, which Go's
# mime.ParseMediaType can read (the `@` form makes kubectl fail "mime: unexpected content after
# media subtype")
MIME = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
MIME_DEPRECATED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
ACCEPTED = (MIME, MIME_DEPRECATED)

# maps whose entries are all values of one type: message name -> its repeated Named* field
_MAPS = {
    "Definitions": "additional_properties",
    "Properties": "additional_properties",
    "ParameterDefinitions": "additional_properties",
    "ResponseDefinitions": "additional_properties",
    "SecurityDefinitions": "additional_properties",
    "SecurityRequirement": "additional_properties",
    "Headers": "additional_properties",
    "Examples": "additional_properties",
    "Oauth2Scopes": "additional_properties",
    "VendorExtension": "additional_properties",
    "Default": "additional_properties",
}
# maps with `x-` keys split off into vendor_extension
_SPLIT_MAPS = {"Paths": "path", "Responses": "response_code"}
_NONBODY = {
    "header": "header_parameter_sub_schema",
    "formData": "form_data_parameter_sub_schema",
    "query": "query_parameter_sub_schema",
    "path": "path_parameter_sub_schema",
}


class EncodeError(ValueError):
    """The JSON document holds something the openapi.v2 messages cannot carry; the text names it."""


def _fields(desc: descriptor.Descriptor) -> dict[str, descriptor.FieldDescriptor]:
    out = {f.json_name: f for f in desc.fields}
    if "_ref" in desc.fields_by_name:
        out["$ref"] = desc.fields_by_name["_ref"]
    return out


def _yaml(v: Any) -> pb.Any:
    return pb.Any(yaml=json.dumps(v, sort_keys=True) + "\n")


def _named(
    field: descriptor.FieldDescriptor, items: list[tuple[str, Any]], where: str
) -> list[message.Message]:
    named = field.message_type
    value_field = named.fields_by_name["value"]
    out: list[message.Message] = []
    for k, v in items:
        m = pb.__dict__[named.name](name=k)
        m.value.CopyFrom(_encode(value_field.message_type, v, f"{where}.{k}"))
        out.append(m)
    return out


def _encode(desc: descriptor.Descriptor, v: Any, where: str) -> message.Message:
    cls = pb.__dict__[desc.name]
    name = desc.name
    if name == "Any":
        return _yaml(v)
    if name in _MAPS:
        if not isinstance(v, dict):
            raise EncodeError(f"{where}: expected an object for {name}")
        m = cls()
        getattr(m, _MAPS[name]).extend(_named(desc.fields_by_name[_MAPS[name]], list(v.items()), where))
        return m
    if name in _SPLIT_MAPS:
        if not isinstance(v, dict):
            raise EncodeError(f"{where}: expected an object for {name}")
        m = cls()
        fld = _SPLIT_MAPS[name]
        plain = [(k, x) for k, x in v.items() if not k.startswith("x-")]
        ext = [(k, x) for k, x in v.items() if k.startswith("x-")]
        getattr(m, fld).extend(_named(desc.fields_by_name[fld], plain, where))
        m.vendor_extension.extend(_named(desc.fields_by_name["vendor_extension"], ext, where))
        return m
    if name in ("ParametersItem", "ResponseValue"):
        if isinstance(v, dict) and "$ref" in v:
            return cls(json_reference=_encode(pb.JsonReference.DESCRIPTOR, v, where))
        other = "parameter" if name == "ParametersItem" else "response"
        return cls(**{other: _encode(desc.fields_by_name[other].message_type, v, where)})
    if name == "Parameter":
        if isinstance(v, dict) and v.get("in") == "body":
            return cls(body_parameter=_encode(pb.BodyParameter.DESCRIPTOR, v, where))
        return cls(non_body_parameter=_encode(pb.NonBodyParameter.DESCRIPTOR, v, where))
    if name == "NonBodyParameter":
        where_in = v.get("in") if isinstance(v, dict) else None
        if where_in not in _NONBODY:
            raise EncodeError(f"{where}: parameter 'in' must be one of body, {', '.join(_NONBODY)}")
        fld = _NONBODY[where_in]
        return cls(**{fld: _encode(desc.fields_by_name[fld].message_type, v, where)})
    if name == "AdditionalPropertiesItem":
        if isinstance(v, bool):
            return cls(boolean=v)
        return cls(schema=_encode(pb.Schema.DESCRIPTOR, v, where))
    if name == "ItemsItem":
        items = v if isinstance(v, list) else [v]
        return cls(schema=[_encode(pb.Schema.DESCRIPTOR, i, where) for i in items])
    if name in ("TypeItem", "StringArray"):
        return cls(value=v if isinstance(v, list) else [v])
    if name == "SchemaItem":
        if isinstance(v, dict) and v.get("type") == "file":
            return cls(file_schema=_encode(pb.FileSchema.DESCRIPTOR, v, where))
        return cls(schema=_encode(pb.Schema.DESCRIPTOR, v, where))
    if not isinstance(v, dict):
        raise EncodeError(f"{where}: expected an object for {name}, got {type(v).__name__}")
    m = cls()
    fields = _fields(desc)
    extensions: list[tuple[str, Any]] = []
    for k, x in v.items():
        if k.startswith("x-") and "vendor_extension" in desc.fields_by_name:
            extensions.append((k, x))
            continue
        f = fields.get(k)
        if f is None:
            raise EncodeError(f"{where}: {name} has no field {k!r}")
        if f.type == f.TYPE_MESSAGE:
            if f.is_repeated:
                xs = x if isinstance(x, list) else [x]
                getattr(m, f.name).extend(_encode(f.message_type, i, f"{where}.{k}") for i in xs)
            else:
                getattr(m, f.name).CopyFrom(_encode(f.message_type, x, f"{where}.{k}"))
        elif f.is_repeated:
            getattr(m, f.name).extend(x)
        else:
            setattr(m, f.name, x)
    if extensions:
        m.vendor_extension.extend(_named(desc.fields_by_name["vendor_extension"], extensions, where))
    return m


def encode(doc: Obj) -> bytes:
    """The serialized openapi.v2.Document for a Swagger 2.0 JSON document; EncodeError names what
    could not be carried."""
    return bytes(_encode(pb.Document.DESCRIPTOR, doc, "#").SerializeToString(deterministic=True))


def _decode(m: message.Message) -> Any:
    desc = m.DESCRIPTOR
    name = desc.name
    if name == "Any":
        return json.loads(m.yaml)  # type: ignore[attr-defined]
    if name in _MAPS:
        return {e.name: _decode(e.value) for e in getattr(m, _MAPS[name])}
    if name in _SPLIT_MAPS:
        out = {e.name: _decode(e.value) for e in getattr(m, _SPLIT_MAPS[name])}
        out.update({e.name: _decode(e.value) for e in m.vendor_extension})  # type: ignore[attr-defined]
        return out
    if name in ("ParametersItem", "ResponseValue", "Parameter", "NonBodyParameter", "SchemaItem"):
        which = m.WhichOneof("oneof")
        return _decode(getattr(m, which)) if which else {}
    if name == "AdditionalPropertiesItem":
        which = m.WhichOneof("oneof")
        return m.boolean if which == "boolean" else _decode(m.schema)  # type: ignore[attr-defined]
    if name == "ItemsItem":
        schemas = [_decode(s) for s in m.schema]  # type: ignore[attr-defined]
        return schemas[0] if len(schemas) == 1 else schemas
    if name in ("TypeItem", "StringArray"):
        values = list(m.value)  # type: ignore[attr-defined]
        return values[0] if name == "TypeItem" and len(values) == 1 else values
    out = {}
    for f, x in m.ListFields():
        key = "$ref" if f.name == "_ref" else f.json_name
        if f.name == "vendor_extension":
            out.update({e.name: _decode(e.value) for e in x})
        elif f.type == f.TYPE_MESSAGE:
            out[key] = [_decode(i) for i in x] if f.is_repeated else _decode(x)
        elif f.is_repeated:
            out[key] = list(x)
        else:
            out[key] = x
    return out


def decode(raw: bytes) -> Obj:
    """The JSON document a serialized openapi.v2.Document stands for (the inverse of encode)."""
    doc = pb.Document()
    doc.ParseFromString(raw)
    out = _decode(doc)
    assert isinstance(out, dict)
    return out
