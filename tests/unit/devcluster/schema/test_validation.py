"""Schema conversion and field validation, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshplane.devcluster import errors
from meshplane.devcluster.schema import resources, schemas, validation

SCH = schemas.Schemas()
REG = resources.Registry.with_builtins()
POD_RT = REG.lookup("", "v1", "pods")
assert POD_RT is not None


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": spec or {"containers": [{"name": "c", "image": "x"}]},
    }


def test_converted_schemas_are_openapi_v3() -> None:
    comps = schemas.builtin_components()
    text = json.dumps(comps)
    assert "#/$defs/" not in text and '"null"' not in text
    spec = comps["io.k8s.api.core.v1.PodSpec"]
    assert spec["required"] == ["containers"] and spec["type"] == "object"
    assert comps["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    meta = comps["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]
    assert meta["allOf"] == [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]


def test_unknown_fields_by_mode() -> None:
    obj = pod(containers=[{"name": "c", "image": "x", "bogus": 1}], extra=True)
    with pytest.raises(errors.ApiError) as e:
        validation.check_fields(SCH, POD_RT, json.loads(json.dumps(obj)), validation.STRICT)
    assert e.value.message == (
        'strict decoding error: unknown field "spec.containers[0].bogus", unknown field "spec.extra"'
    )
    warned = json.loads(json.dumps(obj))
    assert validation.check_fields(SCH, POD_RT, warned, validation.WARN) == [
        'unknown field "spec.containers[0].bogus"',
        'unknown field "spec.extra"',
    ]
    assert "extra" not in warned["spec"] and "bogus" not in warned["spec"]["containers"][0]
    assert validation.check_fields(SCH, POD_RT, json.loads(json.dumps(obj)), validation.IGNORE) == []


def test_types_and_int_or_string() -> None:
    with pytest.raises(errors.ApiError) as e:
        validation.check_fields(SCH, POD_RT, pod(containers="nope"), validation.STRICT)
    assert e.value.code == 400 and "spec.containers: expected array, got string" in e.value.message
    svc_rt = REG.lookup("", "v1", "services")
    assert svc_rt is not None
    ok = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": "http"}]}}
    assert validation.check_fields(SCH, svc_rt, ok, validation.STRICT) == []
    bad = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": True}]}}
    with pytest.raises(errors.ApiError):
        validation.check_fields(SCH, svc_rt, bad, validation.STRICT)


def test_required_fields_names_and_labels() -> None:
    with pytest.raises(errors.ApiError) as e:
        validation.check_required(SCH, POD_RT, pod(containers=[{"image": "x"}]))
    assert e.value.code == 422 and e.value.causes[0]["field"] == "spec.containers[0].name"
    bad_meta = dict(
        pod(), metadata={"name": "UPPER", "labels": {"ok": "yes", "bad key!": "v", "k": "x" * 64}}
    )
    with pytest.raises(errors.ApiError) as e:
        validation.check_required(SCH, POD_RT, bad_meta)
    assert [c["field"] for c in e.value.causes] == ["metadata.name", "metadata.labels", "metadata.labels"]
    validation.check_required(SCH, POD_RT, dict(pod(), metadata={"generateName": "web-"}))
    with pytest.raises(errors.ApiError):
        validation.parse_mode("Loud")
