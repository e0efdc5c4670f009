"""Small constructors for protobuf values used by every generator."""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from google.protobuf import any_pb2, duration_pb2, message, struct_pb2


def to_any(msg: message.Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(msg)
    return out


def duration(seconds: float) -> duration_pb2.Duration:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def struct(values: Mapping[str, object]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def metadata(filters: Mapping[str, Mapping[str, object]]) -> base_pb2.Metadata:
    md = base_pb2.Metadata()
    for key, values in filters.items():
        md.filter_metadata[key].CopyFrom(struct(values))
    return md


def socket_address(address: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=address, port_value=port))


def ads_source() -> config_source_pb2.ConfigSource:
    """ADS, waiting for the resource without a fetch timeout (as Istio's EDS/RDS config sources)."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        initial_fetch_timeout=duration(0),
        resource_api_version=config_source_pb2.V3,
    )
