"""Hypothesis throws random, truncated and malformed JSON/YAML/protobuf at the create and patch paths:
every answer is a 4xx Status, the server keeps serving, and the store is unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import clusters, rawhttp, strategies

VALID = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "victim", "labels": {"a": "b"}},
    "data": {"k": "v"},
}
VALID_JSON = json.dumps(VALID).encode()
VALID_YAML = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: victim\n  labels: {a: b}\ndata:\n  k: v\n"
PATCH_TYPES = [
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
]

json_values = strategies.json_values(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    max_leaves=20,
)
bad_bodies = st.one_of(
    st.binary(max_size=300),
    st.integers(1, len(VALID_JSON) - 1).map(lambda n: VALID_JSON[:n]),
    st.integers(1, len(VALID_YAML) - 1).map(lambda n: VALID_YAML[:n]),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b"{",
            b"[]",
            b"null",
            b'"x"',
            b"{}",
            b"\xff\xfe",
            b"a: [",
            b"- - -",
            b"&a [*a, *a]",
            b'{"metadata": {"name": 5}}',
            b'{"metadata": []}',
            b'{"data": {"k": 1}}',
            b'{"metadata": {"name": "x", "labels": {"a": {"b": 1}}}}',
            b"[" * 5000 + b"]" * 5000,
            b'{"a": NaN}',
            b"k8s\x00\x0a\x05",
            b"k8s\x00" + b"\xff" * 20,
        ]
    ),
)


@pytest.fixture(scope="module")
def api(cluster: clusters.ThreadedCluster) -> rawhttp.Api:
    return rawhttp.for_cluster(cluster.cluster)


@pytest.fixture(scope="module")
def victim_ns(cluster: clusters.ThreadedCluster, api: rawhttp.Api) -> str:
    ns = clusters.unique("fuzz")
    assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
    assert api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", VALID).status == 201
    return ns


def snapshot(cluster: clusters.ThreadedCluster) -> tuple[int, Any]:
    store = cluster.cluster.store
    return cluster.run(lambda: (store.rv, store.list("configmaps")))


def check(r: rawhttp.Response) -> None:
    assert 400 <= r.status < 500, (r.status, r.body[:300])
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == r.status
    assert body["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=bad_bodies,
    content_type=st.sampled_from(
        ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
    ),
)
def test_bad_create_bodies(
    cluster: clusters.ThreadedCluster, api: rawhttp.Api, victim_ns: str, body: bytes, content_type: str
) -> None:
    before = snapshot(cluster)
    r = api.request("POST", f"/api/v1/namespaces/{victim_ns}/configmaps", body, content_type=content_type)
    if r.status == 201:  # hypothesis found a valid ConfigMap: then exactly one object was added
        created = r.json()["metadata"]["name"]
        assert snapshot(cluster)[0] == before[0] + 1
        api.request("DELETE", f"/api/v1/namespaces/{victim_ns}/configmaps/{created}")
        return
    check(r)
    assert snapshot(cluster) == before


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bad_bodies, content_type=st.sampled_from(PATCH_TYPES))
def test_bad_patch_bodies(
    cluster: clusters.ThreadedCluster, api: rawhttp.Api, victim_ns: str, body: bytes, content_type: str
) -> None:
    before = snapshot(cluster)
    r = api.request(
        "PATCH", f"/api/v1/namespaces/{victim_ns}/configmaps/victim", body, content_type=content_type
    )
    if r.status == 200:  # a valid patch: restore the victim for the next example
        api.request(
            "PUT",
            f"/api/v1/namespaces/{victim_ns}/configmaps/victim",
            dict(VALID, metadata=dict(VALID["metadata"], namespace=victim_ns)),
        )
        return
    check(r)
    assert snapshot(cluster) == before


def test_server_still_serves(api: rawhttp.Api, victim_ns: str) -> None:
    r = api.get(f"/api/v1/namespaces/{victim_ns}/configmaps/victim")
    assert r.status == 200 and r.json()["data"] == {"k": "v"}
