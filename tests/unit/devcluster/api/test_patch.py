"""Patch formats, strategic merge directives as kubectl sends them."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.devcluster import errors
from meshplane.devcluster.api import patch
from meshplane.devcluster.schema import schemas

SCH = schemas.Schemas()
POD = SCH.component("io.k8s.api.core.v1.Pod")


def smp(original: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    return patch.Strategic(SCH).apply(original, p, POD)


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": list(containers), **spec},
    }


def test_merge_patch_rfc7386() -> None:
    assert patch.merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": [1]}) == {
        "a": 1,
        "b": {"d": 3, "e": 4},
        "f": [1],
    }


def test_json_patch_ops() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    out = patch.json_patch(
        doc,
        [
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": 2},
            {"op": "copy", "from": "/b", "path": "/d"},
            {"op": "move", "from": "/a/0", "path": "/e"},
            {"op": "remove", "path": "/b"},
            {"op": "test", "path": "/e", "value": 1},
            {"op": "add", "path": "/x~1y", "value": True},
        ],
    )
    assert out == {"a": [2, 3], "d": {"c": 2}, "e": 1, "x/y": True}
    assert doc == {"a": [1, 2], "b": {"c": 1}}
    for bad in (
        [{"op": "remove", "path": "/nope"}],
        [{"op": "test", "path": "/a", "value": 0}],
        [{"op": "frob", "path": "/a"}],
        [{"path": "/a"}],
        [{"op": "add", "path": "a", "value": 1}],
    ):
        with pytest.raises(errors.PatchError):
            patch.json_patch(doc, bad)


def test_smp_merges_containers_by_name_and_env_by_name() -> None:
    orig = pod(
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
        {"name": "b", "image": "b:1"},
    )
    out = smp(orig, {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}]}]}})
    a, b = out["spec"]["containers"]
    assert a["image"] == "a:1" and a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}]
    assert b == {"name": "b", "image": "b:1"}


def test_smp_delete_directive_and_null() -> None:
    orig = pod({"name": "a", "image": "a"}, {"name": "b", "image": "b"}, nodeSelector={"x": "1", "y": "2"})
    out = smp(
        orig, {"spec": {"containers": [{"name": "b", "$patch": "delete"}], "nodeSelector": {"x": None}}}
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["a"]
    assert out["spec"]["nodeSelector"] == {"y": "2"}


def test_smp_replace_directive_on_list_and_map() -> None:
    orig = pod({"name": "a", "image": "a"}, {"name": "b", "image": "b"})
    out = smp(orig, {"spec": {"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}})
    assert out["spec"]["containers"] == [{"name": "z", "image": "z"}]
    out = smp(orig, {"metadata": {"$patch": "replace", "name": "q"}})
    assert out["metadata"] == {"name": "q"}


def test_smp_set_element_order() -> None:
    orig = pod({"name": "a", "image": "a"}, {"name": "b", "image": "b"})
    out = smp(
        orig,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                "containers": [{"name": "a", "image": "a2"}],
            }
        },
    )
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [("b", "b"), ("a", "a2")]


def test_smp_retain_keys_and_delete_from_primitive_list() -> None:
    orig = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["x", "y", "z"]},
        "spec": {"containers": [{"name": "a", "image": "a", "args": ["1", "2"]}]},
    }
    out = smp(orig, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["y"]}})
    assert out["metadata"]["finalizers"] == ["x", "z"]
    out = smp(orig, {"metadata": {"finalizers": ["w"]}})  # finalizers merge as a set
    assert out["metadata"]["finalizers"] == ["x", "y", "z", "w"]
    out = smp(orig, {"spec": {"containers": [{"name": "a", "args": ["9"]}]}})  # args replace (atomic)
    assert out["spec"]["containers"][0]["args"] == ["9"]
    dep_sch = SCH.component("io.k8s.api.apps.v1.Deployment")
    dep = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    out = patch.Strategic(SCH).apply(
        dep, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, dep_sch
    )
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_smp_missing_merge_key_is_an_error() -> None:
    with pytest.raises(errors.PatchError):
        smp(pod({"name": "a"}), {"spec": {"containers": [{"image": "x"}]}})


def test_apply_maps_errors_to_status() -> None:
    with pytest.raises(errors.ApiError) as e:
        patch.apply("application/strategic-merge-patch+json", {}, {}, SCH, None, strategic_allowed=False)
    assert e.value.code == 415
    with pytest.raises(errors.ApiError) as e:
        patch.apply(
            "application/json-patch+json",
            {},
            [{"op": "remove", "path": "/x"}],
            SCH,
            None,
            strategic_allowed=True,
        )
    assert e.value.code == 422
