"""Istio's NameTable (`istio.networking.nds.v1`), the DNS table the control plane sends over xDS.

Source: istio/istio `pkg/dns/proto/nds.proto` (type URL
`type.googleapis.com/istio.networking.nds.v1.NameTable`). As `security/caproto.py` does for the CA's
messages, the descriptor is built in Python from the same fields (no protoc) and registered in the
default pool, which is what a generated `_pb2` does on import:

    message NameTable {
      message NameInfo {
        repeated string ips = 1;
        string registry = 2;
        string shortname = 3;
        string namespace = 4;
        repeated string alt_hosts = 5 [deprecated = true];
      }
      map<string, NameInfo> table = 1;
      NameInfo name_info = 2;
    }

The control plane builds it (xds/nds.py); the agent's DNS proxy reads it (agent/dnsproxy.py).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "istio.networking.nds.v1"
PROTO_FILE = "istio/networking/nds/v1/nds.proto"
TYPE_URL = f"type.googleapis.com/{PACKAGE}.NameTable"

_F: Any = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, ftype: int, label: int = _F.LABEL_OPTIONAL, type_name: str = "") -> Any:
    head, *rest = name.split("_")
    f = _F(
        name=name, number=number, type=ftype, label=label, json_name=head + "".join(p.title() for p in rest)
    )
    if type_name:
        f.type_name = type_name
    return f


def _file_proto() -> Any:
    fp = descriptor_pb2.FileDescriptorProto(name=PROTO_FILE, package=PACKAGE, syntax="proto3")
    table = fp.message_type.add(name="NameTable")
    info = table.nested_type.add(name="NameInfo")
    info.field.extend(
        [
            _field("ips", 1, _F.TYPE_STRING, _F.LABEL_REPEATED),
            _field("registry", 2, _F.TYPE_STRING),
            _field("shortname", 3, _F.TYPE_STRING),
            _field("namespace", 4, _F.TYPE_STRING),
            _field("alt_hosts", 5, _F.TYPE_STRING, _F.LABEL_REPEATED),
        ]
    )
    info.field[4].options.deprecated = True
    entry = table.nested_type.add(name="TableEntry")
    entry.options.map_entry = True
    entry.field.extend(
        [
            _field("key", 1, _F.TYPE_STRING),
            _field("value", 2, _F.TYPE_MESSAGE, type_name=f".{PACKAGE}.NameTable.NameInfo"),
        ]
    )
    table.field.extend(
        [
            _field("table", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, f".{PACKAGE}.NameTable.TableEntry"),
            _field("name_info", 2, _F.TYPE_MESSAGE, type_name=f".{PACKAGE}.NameTable.NameInfo"),
        ]
    )
    return fp


def _file_descriptor() -> Any:
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(PROTO_FILE)
    except KeyError:
        return pool.AddSerializedFile(_file_proto().SerializeToString())


DESCRIPTOR: Any = _file_descriptor()
NameTable: Any = message_factory.GetMessageClass(DESCRIPTOR.message_types_by_name["NameTable"])
NameInfo: Any = message_factory.GetMessageClass(
    DESCRIPTOR.message_types_by_name["NameTable"].nested_types_by_name["NameInfo"]
)
