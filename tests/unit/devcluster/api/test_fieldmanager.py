"""Field ownership and server-side apply (api/fieldmanager.py), without a server."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.devcluster import errors
from meshplane.devcluster.api import fieldmanager as fm
from meshplane.devcluster.schema import resources, schemas

SCH = schemas.Schemas()
REG = resources.Registry.with_builtins()
CM_RT = REG.lookup("", "v1", "configmaps")
POD_RT = REG.lookup("", "v1", "pods")
assert CM_RT is not None and POD_RT is not None


def cm(**data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "n"},
        "data": data,
    }


def owners(obj: dict[str, Any]) -> dict[str, set[fm.Path]]:
    return {m.manager: fs for m, (fs, _t) in fm.read(obj).items()}


def test_create_owns_every_field_but_identity_meta() -> None:
    obj = cm(a="1")
    fm.FieldManager(SCH, CM_RT, "").update(None, obj, "kubectl-create", 0.0)
    [entry] = obj["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl-create" and entry["operation"] == "Update"
    assert entry["apiVersion"] == "v1" and entry["time"] == "1970-01-01T00:00:00Z"
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_update_moves_only_changed_fields() -> None:
    m = fm.FieldManager(SCH, CM_RT, "")
    old = cm(a="1", b="2")
    m.update(None, old, "one", 0.0)
    new = cm(a="1", b="3", c="4")
    new["metadata"]["managedFields"] = old["metadata"]["managedFields"]
    m.update(old, new, "two", 1.0)
    got = owners(new)
    assert got["one"] == {("f:data", "f:a")}
    assert got["two"] == {("f:data", "f:b"), ("f:data", "f:c")}


def test_apply_conflict_message_and_causes() -> None:
    m = fm.FieldManager(SCH, CM_RT, "")
    live = m.apply(None, cm(k="x"), "a", False, 0.0, cm(k="x"))
    with pytest.raises(errors.ApiError) as e:
        m.apply(live, cm(k="y"), "b", False, 1.0, cm(k="y"))
    assert e.value.code == 409 and e.value.reason == "Conflict"
    assert e.value.message == 'Apply failed with 1 conflict: conflict with "a": .data.k'
    assert e.value.causes == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "a"', "field": ".data.k"}
    ]


def test_several_conflicts_grouped_by_manager() -> None:
    m = fm.FieldManager(SCH, CM_RT, "")
    live = m.apply(None, cm(k="x", j="x"), "a", False, 0.0, cm(k="x", j="x"))
    with pytest.raises(errors.ApiError) as e:
        m.apply(live, cm(k="y", j="y"), "b", False, 1.0, cm(k="y", j="y"))
    assert e.value.message == 'Apply failed with 2 conflicts: conflicts with "a":\n- .data.j\n- .data.k'


def test_list_map_keys_and_paths() -> None:
    pod = {"spec": {"containers": [{"name": "app", "image": "i", "ports": [{"containerPort": 80}]}]}}
    schema = SCH.component(POD_RT.schema_name)
    fs = fm.Fields(SCH).of(pod, schema)
    app = ("f:spec", "f:containers", 'k:{"name":"app"}')
    port = (*app, "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')
    assert fs == {app, (*app, "f:name"), (*app, "f:image"), port, (*port, "f:containerPort")}
    assert fm.path_string((*app, "f:image")) == '.spec.containers[name="app"].image'
    assert fm.path_string(port) == '.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"]'
    assert fm.decode(fm.encode(fs)) == fs


def test_field_manager_options_checked() -> None:
    with pytest.raises(errors.ApiError) as e:
        fm.check_manager("", apply=True, force=False)
    assert e.value.code == 422
    with pytest.raises(errors.ApiError) as e:
        fm.check_manager("x", apply=False, force=True)
    assert "force: Forbidden: may not be specified for non-apply patch" in e.value.message
    assert fm.default_manager("kubectl/v1.32.0 (linux/amd64) kubernetes/abc") == "kubectl"


def test_written_managed_fields_taken_and_empty_list_clears() -> None:
    m = fm.FieldManager(SCH, CM_RT, "")
    old = cm(a="1")
    m.update(None, old, "one", 0.0)
    moved = cm(a="1")
    moved["metadata"]["managedFields"] = [dict(old["metadata"]["managedFields"][0], manager="other")]
    m.update(old, moved, "two", 1.0)
    assert owners(moved) == {"other": {("f:data", "f:a")}}
    cleared = cm(a="1")
    cleared["metadata"]["managedFields"] = []
    m.update(old, cleared, "two", 1.0)
    assert "managedFields" not in cleared["metadata"]
