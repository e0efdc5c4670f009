"""The CA's wire contract: Istio's `istio.v1.auth` messages, service name and a client stub.

The descriptor is built in Python from the same fields as `proto/ca.proto` (no protoc, so no
generated-code/runtime version coupling); registering it in the default pool is what a generated
`_pb2` module does on import. `tests/unit/security/test_caproto.py` checks it against the .proto.
This module imports only protobuf and grpc, so the agent may use it (see pyproject's
import-linter `ignore_imports`).
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

PACKAGE = "istio.v1.auth"
SERVICE_NAME = f"{PACKAGE}.IstioCertificateService"
METHOD_NAME = "CreateCertificate"
METHOD_PATH = f"/{SERVICE_NAME}/{METHOD_NAME}"
PROTO_FILE = "meshplane/security/proto/ca.proto"

# Request metadata keys Istio defines (pkg/security): CertSigner, ImpersonatedIdentity.
META_CERT_SIGNER = "CertSigner"
META_IMPERSONATED_IDENTITY = "ImpersonatedIdentity"

_F: Any = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, ftype: int, label: int = _F.LABEL_OPTIONAL, type_name: str = "") -> Any:
    f = _F(name=name, number=number, type=ftype, label=label, json_name=_json_name(name))
    if type_name:
        f.type_name = type_name
    return f


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _file_proto() -> Any:
    fp = descriptor_pb2.FileDescriptorProto(
        name=PROTO_FILE, package=PACKAGE, syntax="proto3", dependency=["google/protobuf/struct.proto"]
    )
    req = fp.message_type.add(name="IstioCertificateRequest")
    req.field.extend(
        [
            _field("csr", 1, _F.TYPE_STRING),
            _field("validity_duration", 3, _F.TYPE_INT64),
            _field("metadata", 4, _F.TYPE_MESSAGE, type_name=".google.protobuf.Struct"),
        ]
    )
    req.reserved_range.add(start=2, end=3)
    resp = fp.message_type.add(name="IstioCertificateResponse")
    resp.field.extend(
        [
            _field("cert_chain", 1, _F.TYPE_STRING, _F.LABEL_REPEATED),
            _field("root_cert", 2, _F.TYPE_MESSAGE, type_name=f".{PACKAGE}.Roots"),
        ]
    )
    roots = fp.message_type.add(name="Roots")
    roots.field.append(_field("ca_cert", 1, _F.TYPE_STRING, _F.LABEL_REPEATED))
    svc = fp.service.add(name="IstioCertificateService")
    svc.method.add(
        name=METHOD_NAME,
        input_type=f".{PACKAGE}.IstioCertificateRequest",
        output_type=f".{PACKAGE}.IstioCertificateResponse",
    )
    return fp


def _file_descriptor() -> Any:
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(PROTO_FILE)
    except KeyError:
        pass
    # struct.proto must be in the pool before a file that depends on it.
    pool.FindFileByName(struct_pb2.DESCRIPTOR.name)
    return pool.AddSerializedFile(_file_proto().SerializeToString())


DESCRIPTOR: Any = _file_descriptor()
IstioCertificateRequest: Any = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["IstioCertificateRequest"]
)
IstioCertificateResponse: Any = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["IstioCertificateResponse"]
)
Roots: Any = message_factory.GetMessageClass(DESCRIPTOR.message_types_by_name["Roots"])


class CertificateStub:
    """Client side of `IstioCertificateService` on a grpc.aio channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.CreateCertificate = channel.unary_unary(
            METHOD_PATH,
            request_serializer=IstioCertificateRequest.SerializeToString,
            response_deserializer=IstioCertificateResponse.FromString,
        )
