"""The metadata-only protobuf the dev cluster writes, read back with Google's protobuf runtime and
message descriptors written from k8s.io/apimachinery's meta/v1 generated.proto (not from the dev
cluster's own tables), and the Lease bodies client-go's leader election sends."""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from meshplane.devcluster.api import protobuf
from tests.unit.devcluster.api.test_protobuf import envelope, field

F = descriptor_pb2.FieldDescriptorProto
# (message, [(field, number, type, label, message type)]) from apimachinery pkg/apis/meta/v1/generated.proto
_MESSAGES: list[tuple[str, list[tuple[str, int, int, int, str]]]] = [
    (
        "Time",
        [
            ("seconds", 1, F.TYPE_INT64, F.LABEL_OPTIONAL, ""),
            ("nanos", 2, F.TYPE_INT32, F.LABEL_OPTIONAL, ""),
        ],
    ),
    (
        "OwnerReference",
        [
            ("kind", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("name", 3, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("uid", 4, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("apiVersion", 5, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("controller", 6, F.TYPE_BOOL, F.LABEL_OPTIONAL, ""),
        ],
    ),
    (
        "LabelsEntry",
        [("key", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, ""), ("value", 2, F.TYPE_STRING, F.LABEL_OPTIONAL, "")],
    ),
    (
        "ObjectMeta",
        [
            ("name", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("namespace", 3, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("uid", 5, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("resourceVersion", 6, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("generation", 7, F.TYPE_INT64, F.LABEL_OPTIONAL, ""),
            ("creationTimestamp", 8, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".k8s.Time"),
            ("labels", 11, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".k8s.LabelsEntry"),
            ("ownerReferences", 13, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".k8s.OwnerReference"),
            ("finalizers", 14, F.TYPE_STRING, F.LABEL_REPEATED, ""),
        ],
    ),
    (
        "ListMeta",
        [
            ("resourceVersion", 2, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("continue", 3, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("remainingItemCount", 4, F.TYPE_INT64, F.LABEL_OPTIONAL, ""),
        ],
    ),
    ("PartialObjectMetadata", [("metadata", 1, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".k8s.ObjectMeta")]),
    (
        "PartialObjectMetadataList",
        [
            ("metadata", 1, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".k8s.ListMeta"),
            ("items", 2, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".k8s.PartialObjectMetadata"),
        ],
    ),
    ("RawExtension", [("raw", 1, F.TYPE_BYTES, F.LABEL_OPTIONAL, "")]),
    (
        "WatchEvent",
        [
            ("type", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("object", 2, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".k8s.RawExtension"),
        ],
    ),
    (
        "TypeMeta",
        [
            ("apiVersion", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
            ("kind", 2, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
        ],
    ),
    (
        "Unknown",
        [
            ("typeMeta", 1, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".k8s.TypeMeta"),
            ("raw", 2, F.TYPE_BYTES, F.LABEL_OPTIONAL, ""),
        ],
    ),
]


def _classes() -> dict[str, Any]:
    fd = descriptor_pb2.FileDescriptorProto(name="k8s_meta_test.proto", package="k8s", syntax="proto2")
    for name, fields in _MESSAGES:
        msg = fd.message_type.add(name=name)
        for fname, num, ftype, label, tname in fields:
            f = msg.field.add(name=fname, number=num, type=ftype, label=label)
            if tname:
                f.type_name = tname
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"k8s.{name}"))
        for name, _ in _MESSAGES
    }


M = _classes()
META = {
    "name": "web",
    "namespace": "ns",
    "uid": "u-1",
    "resourceVersion": "42",
    "generation": 3,
    "creationTimestamp": "2026-01-02T03:04:05Z",
    "labels": {"app": "web"},
    "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-0", "controller": True}
    ],
    "finalizers": ["f"],
}


def _unwrap(body: bytes) -> tuple[Any, bytes]:
    assert body[:4] == b"k8s\x00"
    unknown = M["Unknown"].FromString(body[4:])
    return unknown.typeMeta, unknown.raw


def test_partial_object_metadata_list_reads_with_googles_runtime() -> None:
    doc = {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadataList",
        "metadata": {"resourceVersion": "42", "continue": "tok", "remainingItemCount": 2},
        "items": [{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": META}],
    }
    type_meta, raw = _unwrap(protobuf.encode("meta.k8s.io/v1", "PartialObjectMetadataList", doc))
    assert (type_meta.apiVersion, type_meta.kind) == ("meta.k8s.io/v1", "PartialObjectMetadataList")
    lst = M["PartialObjectMetadataList"].FromString(raw)
    assert (
        lst.metadata.resourceVersion,
        getattr(lst.metadata, "continue"),
        lst.metadata.remainingItemCount,
    ) == (
        "42",
        "tok",
        2,
    )
    m = lst.items[0].metadata
    assert (m.name, m.namespace, m.uid, m.resourceVersion, m.generation) == ("web", "ns", "u-1", "42", 3)
    assert m.creationTimestamp.seconds == 1767323045
    assert {e.key: e.value for e in m.labels} == {"app": "web"}
    assert (m.ownerReferences[0].name, m.ownerReferences[0].controller) == ("rs", True)
    assert list(m.finalizers) == ["f"]


def test_watch_frame_reads_with_googles_runtime() -> None:
    obj = protobuf.encode("meta.k8s.io/v1", "PartialObjectMetadata", {"metadata": {"resourceVersion": "7"}})
    frame = protobuf.encode_watch_event("BOOKMARK", obj)
    (n,) = struct.unpack(">I", frame[:4])
    assert n == len(frame) - 4
    event = M["WatchEvent"].FromString(frame[4:])
    assert event.type == "BOOKMARK"
    type_meta, raw = _unwrap(event.object.raw)
    assert type_meta.kind == "PartialObjectMetadata"
    assert M["PartialObjectMetadata"].FromString(raw).metadata.resourceVersion == "7"


def test_decodes_a_leader_election_lease() -> None:
    renew = field(1, 1767323045) + field(2, 123456000)
    spec = field(1, "istiod-1") + field(2, 30) + field(4, renew) + field(5, 0)
    obj = protobuf.decode(
        envelope("coordination.k8s.io/v1", "Lease", field(1, field(1, "lock")) + field(2, spec))
    )
    assert obj["spec"] == {
        "holderIdentity": "istiod-1",
        "leaseDurationSeconds": 30,
        "renewTime": "2026-01-02T03:04:05.123456Z",
        "leaseTransitions": 0,
    }
