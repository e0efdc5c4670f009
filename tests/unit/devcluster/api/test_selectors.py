from __future__ import annotations

import pytest

from meshplane.devcluster import errors
from meshplane.devcluster.api import selectors


@pytest.mark.parametrize(
    ("text", "labels", "want"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (b, c)", {"a": "c"}, True),
        ("a notin (b,c)", {"a": "d"}, True),
        ("a notin (b,c)", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": "x"}, False),
        ("a=b,c in (d),!e", {"a": "b", "c": "d"}, True),
        ("example.com/x=y", {"example.com/x": "y"}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selector(text: str, labels: dict[str, str], want: bool) -> None:
    assert selectors.labels_match(selectors.parse_label_selector(text), labels) is want


@pytest.mark.parametrize("bad", ["a in (b", "=b", "a=b=c", "a,,b", "a b", "a=" + "x" * 64])
def test_bad_label_selectors_are_400(bad: str) -> None:
    with pytest.raises(errors.ApiError) as e:
        selectors.parse_label_selector(bad)
    assert e.value.code == 400


def test_label_selector_objects() -> None:
    sel = selectors.label_selector_from_object(
        {
            "matchLabels": {"app": "x"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a"]},
                {"key": "gone", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selectors.labels_match(sel, {"app": "x", "tier": "a"})
    assert not selectors.labels_match(sel, {"app": "x", "tier": "a", "gone": "1"})
    assert selectors.labels_match(selectors.label_selector_from_object({}), {"x": "y"})
    assert not selectors.labels_match(selectors.label_selector_from_object(None), {"x": "y"})


def test_field_selectors() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }
    reqs = selectors.parse_field_selector(
        "spec.nodeName=n1,status.phase!=Failed,metadata.namespace==n", "pods"
    )
    assert selectors.fields_match(reqs, pod)
    assert not selectors.fields_match(selectors.parse_field_selector("status.phase=Pending", "pods"), pod)
    ev = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}}
    assert selectors.fields_match(selectors.parse_field_selector("involvedObject.kind=Pod", "events"), ev)
    with pytest.raises(errors.ApiError) as e:
        selectors.parse_field_selector("spec.nodeName=n1", "configmaps")
    assert e.value.message == "field label not supported: spec.nodeName"
