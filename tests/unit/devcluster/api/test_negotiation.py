"""Accept negotiation, as kube-apiserver's handlers/negotiation orders and matches clauses."""

from __future__ import annotations

import pytest

from meshplane.devcluster import errors
from meshplane.devcluster.api import negotiation as n

METADATA_LIST = (
    "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
KUBECTL_TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


@pytest.mark.parametrize(
    ("accept", "stream", "expected"),
    [
        ("", False, n.Output(n.JSON)),
        ("*/*", False, n.Output(n.JSON)),
        ("application/*", False, n.Output(n.JSON)),
        ("application/json, */*", False, n.Output(n.JSON)),
        ("application/yaml", False, n.Output(n.YAML)),
        (METADATA_LIST, False, n.Output(n.PROTOBUF, n.PARTIAL_LIST)),
        (METADATA_LIST, True, n.Output(n.PROTOBUF, n.PARTIAL_LIST)),
        (KUBECTL_TABLE, False, n.Output(n.JSON, n.TABLE)),
        (KUBECTL_TABLE, True, n.Output(n.JSON, n.TABLE)),
        (
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1",
            False,
            n.Output(n.JSON, n.PARTIAL, "v1beta1"),
        ),
        # client-go's protobuf typed clients: full objects fall through to JSON here
        ("application/vnd.kubernetes.protobuf, application/json", False, n.Output(n.JSON)),
        # q orders clauses before their position does
        ("application/json;q=0.5, application/yaml", False, n.Output(n.YAML)),
        # a conversion the server does not know is skipped, not answered unconverted
        ("application/json;as=Table;g=meta.k8s.io;v=v2, application/yaml", False, n.Output(n.YAML)),
        ("application/json;as=Table, application/yaml", False, n.Output(n.YAML)),
        # a Table is JSON or YAML only
        (
            "application/vnd.kubernetes.protobuf;as=Table;g=meta.k8s.io;v=v1, application/json",
            False,
            n.Output(n.JSON),
        ),
        # YAML does not stream
        ("application/yaml, application/json", True, n.Output(n.JSON)),
        ("application/json;stream=watch", True, n.Output(n.JSON)),
    ],
)
def test_negotiate(accept: str, stream: bool, expected: n.Output) -> None:
    assert n.negotiate(accept, stream=stream) == expected


@pytest.mark.parametrize(
    ("accept", "stream"),
    [
        ("text/html", False),
        ("application/vnd.kubernetes.protobuf", False),
        ("application/json;as=Foo;g=meta.k8s.io;v=v1", False),
        ("application/yaml", True),
        ("application/json;stream=chunks", True),
    ],
)
def test_not_acceptable(accept: str, stream: bool) -> None:
    with pytest.raises(errors.ApiError) as e:
        n.negotiate(accept, stream=stream)
    assert (e.value.code, e.value.reason) == (406, "NotAcceptable")
    assert e.value.message.startswith("only the following media types are accepted: application/json")
