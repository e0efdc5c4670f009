"""Kubernetes protobuf bodies: decoding what kubectl's typed clients send, refusing the rest."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshplane.devcluster import errors
from meshplane.devcluster.api import protobuf


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num: int, value: bytes | int | str) -> bytes:
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return protobuf.MAGIC + field(1, field(1, api_version) + field(2, kind)) + field(2, raw)


def test_decodes_a_secret_with_labels_and_bytes() -> None:
    meta = field(1, "s1") + field(2, "") + field(11, field(1, "app") + field(2, "x"))
    raw = field(1, meta) + field(2, field(1, "k") + field(2, b"\x00\x01")) + field(3, "Opaque")
    obj = protobuf.decode(envelope("v1", "Secret", raw))
    assert obj == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s1", "labels": {"app": "x"}},
        "data": {"k": "AAE="},
        "type": "Opaque",
    }


def test_decodes_a_token_request_and_keeps_pointer_zeroes() -> None:
    spec = field(1, "aud") + field(4, 600)
    obj = protobuf.decode(envelope("authentication.k8s.io/v1", "TokenRequest", field(2, spec)))
    assert obj["spec"] == {"audiences": ["aud"], "expirationSeconds": 600}
    dep = protobuf.decode(envelope("apps/v1", "Deployment", field(2, field(1, 0))))
    assert dep["spec"] == {"replicas": 0}


def test_service_port_int_or_string() -> None:
    port = field(3, 80) + field(4, field(1, 1) + field(3, "http"))
    obj = protobuf.decode(envelope("v1", "Service", field(2, field(1, port))))
    assert obj["spec"]["ports"] == [{"port": 80, "targetPort": "http"}]


def test_unknown_kinds_and_fields_are_refused() -> None:
    with pytest.raises(errors.ApiError) as e:
        protobuf.decode(envelope("apps/v1", "DaemonSet", b""))
    assert e.value.code == 415 and "DaemonSet" in e.value.message
    with pytest.raises(errors.ApiError) as e:
        protobuf.decode(envelope("v1", "ConfigMap", field(99, "x")))
    assert e.value.code == 415 and "field number 99" in e.value.message
    with pytest.raises(errors.ApiError) as e:
        protobuf.decode(b"not protobuf")
    assert e.value.code == 400


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        protobuf.decode(protobuf.MAGIC + data)
    except errors.ApiError as e:
        assert e.code in (400, 415)
