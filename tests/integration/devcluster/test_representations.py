"""What the dev cluster answers for each `Accept`: discovery that lists only what it serves, the
metadata-only representations client-go's metadata informers ask for (JSON and protobuf, lists,
watches, bookmarks), YAML, and 406 for what it cannot write."""

from __future__ import annotations

import base64
import http.client
import json
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from meshplane.devcluster.api import context, discovery, protobuf
from tests.support import clusters, rawhttp

# client-go k8s.io/client-go/metadata/metadata.go, List and Watch
LIST_ACCEPT = (
    "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
WATCH_ACCEPT = (
    "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,"
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
)
JSON_LIST_ACCEPT = LIST_ACCEPT.split(",", 1)[1]
JSON_WATCH_ACCEPT = WATCH_ACCEPT.split(",", 1)[1]

# The group/versions a v1.32 kube-apiserver lists in discovery (kubectl api-versions).
KUBE_1_32 = {
    "v1",
    "admissionregistration.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "apiregistration.k8s.io/v1",
    "apps/v1",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "events.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1",
    "networking.k8s.io/v1",
    "node.k8s.io/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1",
}


@pytest.fixture(scope="module")
def cluster_options() -> dict[str, Any]:
    return {"name": "repr", "settings": context.Settings(bookmark_interval=0.2)}


@pytest.fixture
def api(cluster: clusters.ThreadedCluster) -> rawhttp.Api:
    return rawhttp.for_cluster(cluster.cluster)


def cm(api: rawhttp.Api, ns: str, name: str) -> dict[str, Any]:
    body = {"metadata": {"name": name, "labels": {"set": "t"}}, "data": {"secret-ish": "payload"}}
    r = api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body)
    assert r.status == 201, r.body
    out: dict[str, Any] = r.json()
    return out


class Stream:
    """A watch with exact request headers, read as raw bytes (JSON lines or protobuf frames)."""

    def __init__(self, api: rawhttp.Api, path: str, accept: str) -> None:
        self.conn = http.client.HTTPSConnection(api.host, api.port, context=api.ctx, timeout=15)
        self.conn.request("GET", path, headers={"Accept": accept, "Authorization": f"Bearer {api.token}"})
        self.resp = self.conn.getresponse()

    def json_events(self) -> Iterator[dict[str, Any]]:
        while True:
            line = self.resp.readline()
            if not line:
                return
            if line.strip():
                yield json.loads(line)

    def proto_events(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(type, typeMeta, object) per frame, decoded with the project's k8s protobuf tables."""
        while True:
            head = self.resp.read(4)
            if len(head) < 4:
                return
            (n,) = struct.unpack(">I", head)
            event = protobuf.decode_message("WatchEvent", self.resp.read(n))
            embedded = base64.b64decode(event["object"]["raw"])
            type_meta, raw = protobuf.split_envelope(embedded)
            message = "Status" if type_meta.get("kind") == "Status" else "PartialObjectMetadata"
            yield event["type"], type_meta, protobuf.decode_message(message, raw)

    def close(self) -> None:
        if self.conn.sock is not None:
            self.conn.sock.close()
        self.conn.close()


def test_discovery_lists_exactly_what_is_served(api: rawhttp.Api) -> None:
    """Walk legacy discovery: every listed group/version answers, every listed collection lists;
    aggregated discovery lists the same resources; every v1.32 group/version is there."""
    legacy: set[tuple[str, str]] = set()
    gvs = ["v1"] + [v["groupVersion"] for g in api.get("/apis").json()["groups"] for v in g["versions"]]
    assert set(gvs) >= KUBE_1_32
    for gv in gvs:
        base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        doc = api.get(base)
        assert doc.status == 200, (gv, doc.body)
        for r in doc.json()["resources"]:
            legacy.add((gv, r["name"]))
            if "/" in r["name"] or "list" not in r["verbs"]:
                continue
            listed = api.get(f"{base}/{r['name']}?limit=1")
            assert listed.status == 200, (gv, r["name"], listed.body)
            assert listed.json()["kind"] == r["kind"] + "List"
    aggregated: set[tuple[str, str]] = set()
    for path in ("/api", "/apis"):
        agg = api.get(path, headers={"Accept": discovery.AGGREGATED + ",application/json"}).json()
        for item in agg["items"]:
            group = item["metadata"].get("name", "")
            for v in item["versions"]:
                gv = f"{group}/{v['version']}" if group else v["version"]
                for r in v["resources"]:
                    aggregated.add((gv, r["resource"]))
                    aggregated.update(
                        (gv, f"{r['resource']}/{s['subresource']}") for s in r.get("subresources", [])
                    )
    assert aggregated == legacy


def test_scale_subresources_in_discovery(api: rawhttp.Api) -> None:
    res = {r["name"]: r for r in api.get("/apis/apps/v1").json()["resources"]}
    for plural in ("deployments", "replicasets", "statefulsets"):
        scale = res[f"{plural}/scale"]
        assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
        assert sorted(scale["verbs"]) == ["get", "patch", "update"]


def test_metadata_list_and_watch_json(api: rawhttp.Api, ns: str) -> None:
    cm(api, ns, "one")
    r = api.get(
        f"/api/v1/namespaces/{ns}/configmaps?labelSelector=set%3Dt", headers={"Accept": JSON_LIST_ACCEPT}
    )
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    lst = r.json()
    assert (lst["kind"], lst["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    [item] = lst["items"]
    assert item["kind"] == "PartialObjectMetadata" and item["metadata"]["name"] == "one"
    assert "data" not in item and item["metadata"]["labels"] == {"set": "t"}

    rv = lst["metadata"]["resourceVersion"]
    w = Stream(
        api,
        f"/api/v1/namespaces/{ns}/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion={rv}",
        JSON_WATCH_ACCEPT,
    )
    try:
        assert w.resp.status == 200
        events = w.json_events()
        cm(api, ns, "two")
        added = next(events)
        while added["type"] == "BOOKMARK":
            added = next(events)
        bookmark = next(e for e in events if e["type"] == "BOOKMARK")
    finally:
        w.close()
    assert added["type"] == "ADDED" and added["object"]["kind"] == "PartialObjectMetadata"
    assert added["object"]["metadata"]["name"] == "two" and "data" not in added["object"]
    assert bookmark["object"]["kind"] == "PartialObjectMetadata"
    assert bookmark["object"]["apiVersion"] == "meta.k8s.io/v1"
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= int(
        added["object"]["metadata"]["resourceVersion"]
    )


def test_metadata_list_and_watch_protobuf(api: rawhttp.Api, ns: str) -> None:
    made = cm(api, ns, "one")
    r = api.get(f"/api/v1/namespaces/{ns}/configmaps?labelSelector=set%3Dt", headers={"Accept": LIST_ACCEPT})
    assert r.status == 200 and r.headers["Content-Type"] == protobuf.MEDIA_TYPE
    type_meta, raw = protobuf.split_envelope(r.body)
    assert type_meta == {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList"}
    lst = protobuf.decode_message("PartialObjectMetadataList", raw)
    [item] = lst["items"]
    assert item["metadata"]["name"] == "one" and item["metadata"]["uid"] == made["metadata"]["uid"]
    assert item["metadata"]["creationTimestamp"] == made["metadata"]["creationTimestamp"]

    rv = lst["metadata"]["resourceVersion"]
    w = Stream(
        api,
        f"/api/v1/namespaces/{ns}/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion={rv}",
        WATCH_ACCEPT,
    )
    try:
        assert w.resp.status == 200
        assert w.resp.headers["Content-Type"] == protobuf.MEDIA_TYPE + ";stream=watch"
        events = w.proto_events()
        cm(api, ns, "two")
        added = next(e for e in events if e[0] != "BOOKMARK")
        bookmark = next(e for e in events if e[0] == "BOOKMARK")
    finally:
        w.close()
    etype, type_meta, obj = added
    assert etype == "ADDED" and type_meta == {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata"}
    assert obj["metadata"]["name"] == "two" and obj["metadata"]["labels"] == {"set": "t"}
    assert (
        bookmark[1]["kind"] == "PartialObjectMetadata" and int(bookmark[2]["metadata"]["resourceVersion"]) > 0
    )


def test_metadata_get_and_its_list_mismatch(api: rawhttp.Api, ns: str) -> None:
    cm(api, ns, "one")
    path = f"/api/v1/namespaces/{ns}/configmaps"
    one = api.get(
        f"{path}/one", headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1"}
    )
    assert one.status == 200 and one.json()["apiVersion"] == "meta.k8s.io/v1beta1"
    assert one.json()["kind"] == "PartialObjectMetadata" and "data" not in one.json()
    wrong = api.get(path, headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"})
    assert wrong.status == 406 and wrong.json()["reason"] == "NotAcceptable"
    assert (
        wrong.json()["message"] == "you requested PartialObjectMetadata, but the requested object is a list"
    )


def test_yaml_and_not_acceptable(api: rawhttp.Api, ns: str) -> None:
    cm(api, ns, "one")
    path = f"/api/v1/namespaces/{ns}/configmaps/one"
    as_yaml = api.get(path, headers={"Accept": "application/yaml"})
    assert as_yaml.status == 200 and as_yaml.headers["Content-Type"] == "application/yaml"
    assert yaml.safe_load(as_yaml.body)["data"] == {"secret-ish": "payload"}
    for accept in (
        "text/html",
        "application/vnd.kubernetes.protobuf;as=Table;g=meta.k8s.io;v=v1",  # Table: JSON or YAML only
        "application/json;as=Table;g=meta.k8s.io;v=v2",
        "application/vnd.kubernetes.protobuf",  # full objects: JSON or YAML only here
    ):
        r = api.get(path, headers={"Accept": accept})
        assert r.status == 406, accept
        status = r.json()
        assert (status["kind"], status["reason"], status["code"]) == ("Status", "NotAcceptable", 406)
        assert status["message"].startswith(
            "only the following media types are accepted: application/json, application/yaml, "
        )
    # a later clause the server can write wins, as kube-apiserver negotiates
    r = api.get(path, headers={"Accept": "text/html, application/vnd.kubernetes.protobuf, application/json"})
    assert r.status == 200 and r.json()["kind"] == "ConfigMap"
    w = api.get(f"/api/v1/namespaces/{ns}/configmaps?watch=1", headers={"Accept": "application/yaml"})
    assert w.status == 406 and "stream=watch" in w.json()["message"]
