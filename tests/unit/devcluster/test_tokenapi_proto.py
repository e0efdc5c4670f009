"""Decoding the protobuf TokenRequest that `kubectl create token` sends."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from meshplane.devcluster import protowire, tokenapi

# captured from kubectl 1.32: create token x --audience istio-ca --audience vault --duration 20m
#   --bound-object-kind Pod --bound-object-name p --bound-object-uid u-1
KUBECTL_BODY = (
    b'k8s\x00\n(\n\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x12A\n\x10\n\x00\x12\x00\x1a\x00"\x00*\x002'
    b"\x008\x00B\x00\x12'\n\x08istio-ca\n\x05vault\x1a\x11\n\x03Pod\x12\x02v1"
    b'\x1a\x01p"\x03u-1 \xb0\t\x1a\x04\n'
    b'\x00\x12\x00\x1a\x00"\x00'
)
# create token x (no flags)
KUBECTL_PLAIN = (
    b'k8s\x00\n(\n\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x12\x1a\n\x10\n\x00\x12\x00\x1a\x00"\x00*\x002'
    b'\x008\x00B\x00\x12\x00\x1a\x04\n\x00\x12\x00\x1a\x00"\x00'
)


def test_decodes_kubectl_body() -> None:
    assert tokenapi.decode_token_request(KUBECTL_BODY) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": ["istio-ca", "vault"],
            "expirationSeconds": 1200,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-1"},
        },
    }
    assert tokenapi.decode_token_request(KUBECTL_PLAIN)["spec"] == {}


def test_rejects_non_envelopes() -> None:
    with pytest.raises(protowire.ProtoError):
        tokenapi.decode_token_request(b'{"kind": "TokenRequest"}')
    with pytest.raises(protowire.ProtoError):
        tokenapi.decode_token_request(KUBECTL_BODY[:-5] + b"\xff\xff")


@settings(max_examples=300)
@given(hs.binary(max_size=200))
def test_random_bytes_fail_cleanly(data: bytes) -> None:
    for body in (data, protowire.MAGIC + data, KUBECTL_BODY[: len(data) % len(KUBECTL_BODY)]):
        try:
            tokenapi.decode_token_request(body)
        except protowire.ProtoError:
            pass
