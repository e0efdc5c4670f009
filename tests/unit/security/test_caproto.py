"""The Python descriptor agrees with proto/ca.proto, and the bytes are what Istio's Go code sends."""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import descriptor

from meshplane.security import caproto

PROTO = Path(caproto.__file__).parent / "proto" / "ca.proto"

_TYPES = {
    descriptor.FieldDescriptor.TYPE_STRING: "string",
    descriptor.FieldDescriptor.TYPE_INT64: "int64",
}


def _proto_fields() -> dict[str, set[tuple[str, str, str, int]]]:
    """(label, type, name, number) per message, read from the .proto text."""
    text = PROTO.read_text()
    out: dict[str, set[tuple[str, str, str, int]]] = {}
    for m in re.finditer(r"message (\w+) \{(.*?)\n\}", text, re.S):
        body = re.sub(r"//.*", "", m.group(2))
        fields = re.findall(r"(repeated )?([\w.]+) (\w+) = (\d+);", body)
        out[m.group(1)] = {(rep.strip(), typ, name, int(num)) for rep, typ, name, num in fields}
    return out


def _descriptor_fields(msg: descriptor.Descriptor) -> set[tuple[str, str, str, int]]:
    out = set()
    for f in msg.fields:
        typ = f.message_type.full_name if f.message_type else _TYPES[f.type]
        if f.message_type and f.message_type.full_name.startswith(caproto.PACKAGE + "."):
            typ = f.message_type.name
        label = "repeated" if f.is_repeated else ""
        out.add((label, typ, f.name, f.number))
    return out


def test_descriptor_matches_proto_file() -> None:
    from_proto = _proto_fields()
    assert set(from_proto) == {"IstioCertificateRequest", "IstioCertificateResponse", "Roots"}
    for name, fields in from_proto.items():
        assert _descriptor_fields(caproto.DESCRIPTOR.message_types_by_name[name]) == fields, name
    assert "package istio.v1.auth;" in PROTO.read_text()
    svc = caproto.DESCRIPTOR.services_by_name["IstioCertificateService"]
    assert svc.full_name == "istio.v1.auth.IstioCertificateService"
    method = svc.methods_by_name["CreateCertificate"]
    assert method.input_type.full_name == "istio.v1.auth.IstioCertificateRequest"
    assert method.output_type.full_name == "istio.v1.auth.IstioCertificateResponse"
    assert caproto.METHOD_PATH == "/istio.v1.auth.IstioCertificateService/CreateCertificate"


def test_wire_bytes_match_field_numbers() -> None:
    # Hand-encoded as Istio's Go client encodes {csr: "ab", validity_duration: 86400,
    # metadata: {CertSigner: "x"}}: tags 0x0a (1, bytes), 0x18 (3, varint), 0x22 (4, bytes).
    raw = b'\n\x02ab\x18\x80\xa3\x05"\x10\n\x0e\n\nCertSigner\x12\x00'
    req = caproto.IstioCertificateRequest.FromString(raw)
    assert req.csr == "ab"
    assert req.validity_duration == 86400
    assert "CertSigner" in req.metadata.fields
    resp = caproto.IstioCertificateResponse(
        cert_chain=["leaf\n", "root\n"], root_cert=caproto.Roots(ca_cert=["r"])
    )
    assert resp.SerializeToString() == b"\n\x05leaf\n\n\x05root\n\x12\x03\n\x01r"


def test_removed_subject_id_field_is_ignored_not_misread() -> None:
    # Old clients may still send field 2 (subject_id); it must not land in another field.
    req = caproto.IstioCertificateRequest.FromString(b"\n\x01c\x12\x03old\x18\x05")
    assert (req.csr, req.validity_duration) == ("c", 5)
