"""xDS type URLs and the serialized resource shared by every stream that sends it.

A `Resource` is packed once per (push version, name, proxy view) and the same object, with the same
`Any` bytes, is handed to every connection; `version` is a hash of those bytes, so an unchanged
resource keeps its version across pushes and Delta xDS does not resend it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf import any_pb2, message

_PREFIX = "type.googleapis.com/"
TYPE_CDS = _PREFIX + "envoy.config.cluster.v3.Cluster"
TYPE_EDS = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
TYPE_LDS = _PREFIX + "envoy.config.listener.v3.Listener"
TYPE_RDS = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
TYPE_SDS = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"
# Istio's DNS name table (NDS), asked for by agents with DNS capture (xds/nds.py)
TYPE_NDS = _PREFIX + "istio.networking.nds.v1.NameTable"

# Types Envoy subscribes to with a wildcard (all resources); EDS and RDS are requested by name.
WILDCARD_TYPES = frozenset({TYPE_CDS, TYPE_LDS, TYPE_NDS})
# Envoy's order for a full push: clusters before their endpoints, listeners before their routes.
PUSH_ORDER: tuple[str, ...] = (TYPE_CDS, TYPE_EDS, TYPE_LDS, TYPE_RDS, TYPE_NDS)
GENERATED_TYPES = frozenset(PUSH_ORDER)
SHORT_NAMES = {
    TYPE_CDS: "CDS",
    TYPE_EDS: "EDS",
    TYPE_LDS: "LDS",
    TYPE_RDS: "RDS",
    TYPE_SDS: "SDS",
    TYPE_NDS: "NDS",
}


def short_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    version: str  # per-resource version: a short hash of the serialized bytes
    body: any_pb2.Any  # packed once per push, shared by every stream that sends it


def pack(name: str, msg: message.Message) -> Resource:
    """Serialize `msg` deterministically (same config, same bytes, same version)."""
    data = msg.SerializeToString(deterministic=True)
    body = any_pb2.Any(type_url=_PREFIX + msg.DESCRIPTOR.full_name, value=data)
    return Resource(name=name, version=short_hash(data), body=body)


@dataclass(frozen=True, slots=True)
class Generated:
    """The resources of one type for one proxy, in a stable order, and a version over all of them."""

    type_url: str
    resources: tuple[Resource, ...]
    version: str  # changes when any resource (or the set of names) changes; usable as SotW version_info

    @property
    def names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.resources)

    def by_name(self) -> dict[str, Resource]:
        return {r.name: r for r in self.resources}


def generated(type_url: str, resources: Iterable[Resource]) -> Generated:
    items = tuple(resources)
    digest = hashlib.blake2b(digest_size=8)
    for r in items:
        digest.update(r.name.encode())
        digest.update(b"\0")
        digest.update(r.version.encode())
        digest.update(b"\0")
    return Generated(type_url=type_url, resources=items, version=digest.hexdigest())
