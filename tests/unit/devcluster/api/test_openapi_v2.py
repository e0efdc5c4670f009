"""The Swagger 2.0 conversion and the gnostic protobuf encoding, without a server."""

from __future__ import annotations

import json

import pytest

from meshplane.devcluster.api import dispatch, openapi, openapi_pb
from meshplane.devcluster.api._gen import OpenAPIv2_pb2 as pb
from meshplane.devcluster.schema import resources, schemas


def test_to_v2_follows_kube_apiservers_conversion() -> None:
    v3 = {
        "type": "object",
        "required": ["a", "b"],
        "properties": {
            "a": {"type": "object", "nullable": True, "properties": {"x": {"type": "string"}}},
            "b": {"type": "string"},
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "meta": {"description": "m", "allOf": [{"$ref": schemas.REF_PREFIX + "io.k8s.X"}]},
            "free": {
                "type": "array",
                "x-kubernetes-preserve-unknown-fields": True,
                "items": {"type": "string"},
            },
            "not": {"type": "string"},  # a property named like a keyword stays
        },
        "additionalProperties": {"oneOf": [{"type": "string"}], "not": {"type": "integer"}},
    }
    assert openapi.to_v2(v3) == {
        "type": "object",
        "required": ["b"],
        "properties": {
            "a": {},
            "b": {"type": "string"},
            "port": {"x-kubernetes-int-or-string": True},
            "meta": {"description": "m", "$ref": "#/definitions/io.k8s.X"},
            "free": {"x-kubernetes-preserve-unknown-fields": True},
            "not": {"type": "string"},
        },
        "additionalProperties": {},
    }
    assert "required" not in openapi.to_v2({"required": ["k"], "additionalProperties": {"nullable": True}})


def test_document_v2_cached_per_stamp_and_protobuf_round_trips() -> None:
    reg = resources.Registry.with_builtins()
    oapi = openapi.OpenApi(reg, schemas.Schemas(), "v1.32.0")
    snap = oapi.snapshot()
    raw, etag = oapi.document_v2(snap)
    assert oapi.document_v2(snap) == (raw, etag)
    doc = json.loads(raw)
    assert doc["swagger"] == "2.0" and "io.k8s.api.rbac.v1.ClusterRole" in doc["definitions"]
    assert doc["definitions"]["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"
    blob, pb_etag = oapi.document_v2_pb(snap)
    assert pb_etag == etag and openapi_pb.decode(blob) == doc
    parsed = pb.Document.FromString(blob)
    assert parsed.swagger == "2.0" and parsed.info.title == "Kubernetes"
    names = [d.name for d in parsed.definitions.additional_properties]
    assert "io.k8s.api.core.v1.ServiceAccount" in names


def test_encode_names_what_it_cannot_carry() -> None:
    with pytest.raises(openapi_pb.EncodeError, match=r"#\.definitions\.Bad: Schema has no field 'bogus'"):
        openapi_pb.encode({"swagger": "2.0", "definitions": {"Bad": {"bogus": 1}}})
    with pytest.raises(openapi_pb.EncodeError, match="parameter 'in' must be one of"):
        openapi_pb.encode(
            {"swagger": "2.0", "paths": {"/x": {"get": {"parameters": [{"name": "a", "in": "cookie"}]}}}}
        )


def test_extensions_are_yaml_in_any() -> None:
    blob = openapi_pb.encode({"swagger": "2.0", "definitions": {"A": {"x-k": [{"kind": "A"}]}}})
    ext = pb.Document.FromString(blob).definitions.additional_properties[0].value.vendor_extension[0]
    assert ext.name == "x-k" and json.loads(ext.value.yaml) == [{"kind": "A"}]


def test_accept_negotiation() -> None:
    assert dispatch._wants_protobuf(openapi_pb.MIME)
    assert dispatch._wants_protobuf(f"{openapi_pb.MIME}, application/json")
    assert not dispatch._wants_protobuf(f"application/json, {openapi_pb.MIME}")
    assert not dispatch._wants_protobuf("")
    assert not dispatch._wants_protobuf("*/*")
