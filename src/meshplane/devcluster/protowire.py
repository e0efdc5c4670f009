"""Reading Kubernetes' protobuf request bodies without generated code.

Typed clients (kubectl create token, ...) send `application/vnd.kubernetes.protobuf`: the magic
`k8s\\0`, then a runtime.Unknown {typeMeta{apiVersion, kind} = 1, raw = 2, contentEncoding = 3,
contentType = 4} whose `raw` is the object's message. The few messages the dev cluster accepts
this way are small, so a wire-format reader plus a per-message field map is enough.
"""

from __future__ import annotations

MAGIC = b"k8s\x00"
VARINT, I64, LEN, I32 = 0, 1, 2, 5

Field = tuple[int, int, int | bytes]  # (number, wire type, value)


class ProtoError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint too long")


def fields(data: bytes) -> list[Field]:
    """Every field of one message, in order."""
    out: list[Field] = []
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        num, wt = tag >> 3, tag & 7
        if num == 0:
            raise ProtoError("field number 0")
        value: int | bytes
        if wt == VARINT:
            value, pos = _varint(data, pos)
        elif wt == LEN:
            n, pos = _varint(data, pos)
            if pos + n > len(data):
                raise ProtoError("truncated field")
            value, pos = data[pos : pos + n], pos + n
        elif wt == I64:
            if pos + 8 > len(data):
                raise ProtoError("truncated field")
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wt == I32:
            if pos + 4 > len(data):
                raise ProtoError("truncated field")
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ProtoError(f"unsupported wire type {wt}")
        out.append((num, wt, value))
    return out


def text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtoError("expected a string field")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtoError("invalid UTF-8 in a string field") from e


def message(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ProtoError("expected a message field")
    return value


def int64(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise ProtoError("expected an integer field")
    return value - (1 << 64) if value >= 1 << 63 else value


def unwrap(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw message) of a `k8s\\0` envelope."""
    if not body.startswith(MAGIC):
        raise ProtoError("missing the k8s protobuf magic prefix")
    api_version = kind = ""
    raw = b""
    for num, _wt, value in fields(body[len(MAGIC) :]):
        if num == 1:
            for n2, _w2, v2 in fields(message(value)):
                if n2 == 1:
                    api_version = text(v2)
                elif n2 == 2:
                    kind = text(v2)
        elif num == 2:
            raw = message(value)
        elif num == 3 and text(value):
            raise ProtoError(f"unsupported content encoding {text(value)!r}")
    return api_version, kind, raw
