"""Parse the Envoy node of a stream's first request into a `model.proxy.Proxy`, as Istio does.

Node id: `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN` (pkg/model/proxy.go
`ParseServiceNodeWithMetadata`); the proxy id is the third part (`POD.NAMESPACE`), which is what
syncz and proxy-status show. Metadata keys are the agent's `ISTIO_META_*` env without the prefix.
Anything malformed raises `errors.NodeError` naming the field, which closes only that stream with
INVALID_ARGUMENT.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from meshplane.model import endpoint
from meshplane.model import proxy as proxy_mod
from meshplane.model.ids import ClusterId, ProxyId
from meshplane.runtime import ipaddr
from meshplane.server import errors

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_STRING_KEYS = (
    "CLUSTER_ID",
    "NETWORK",
    "MESH_ID",
    "NAMESPACE",
    "NAME",
    "SERVICE_ACCOUNT",
    "WORKLOAD_NAME",
    "ISTIO_VERSION",
)
_PORT_KEYS = ("ENVOY_STATUS_PORT", "ENVOY_PROMETHEUS_PORT")
MAX_NODE_ID = 1024


def parse(node: base_pb2.Node | None, default_cluster: ClusterId) -> proxy_mod.Proxy:
    """The Proxy described by `node`; `default_cluster` when the metadata names no CLUSTER_ID."""
    if node is None or not node.id:
        raise errors.NodeError("missing node information: the first request must carry node.id")
    try:
        meta = json_format.MessageToDict(node.metadata) if node.HasField("metadata") else {}
    except (ValueError, TypeError) as e:  # pragma: no cover - a Struct always converts
        raise errors.NodeError(f"node metadata cannot be read: {e}") from e
    proxy = parse_id_and_metadata(node.id, meta, default_cluster)
    if node.HasField("locality"):  # Envoy's node.locality, as Istio's agent sends it
        loc = node.locality
        proxy = dataclasses.replace(proxy, locality=endpoint.Locality(loc.region, loc.zone, loc.sub_zone))
    return proxy


def parse_id_and_metadata(
    node_id: str, meta: Mapping[str, Any], default_cluster: ClusterId
) -> proxy_mod.Proxy:
    if len(node_id) > MAX_NODE_ID:
        raise errors.NodeError(f"node id is {len(node_id)} characters long (at most {MAX_NODE_ID})")
    parts = node_id.split("~")
    if len(parts) != 4:
        raise errors.NodeError(
            f"invalid node id {node_id!r}: want TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN "
            f"(4 parts separated by '~', got {len(parts)})"
        )
    kind, ip_part, ident, domain = parts
    try:
        ptype = proxy_mod.ProxyType(kind)
    except ValueError:
        valid = ", ".join(t.value for t in proxy_mod.ProxyType)
        raise errors.NodeError(
            f"invalid node type {kind!r} in node id {node_id!r} (valid: {valid})"
        ) from None
    if not ident or any(c.isspace() for c in ident):
        raise errors.NodeError(f"invalid node id {node_id!r}: the POD.NAMESPACE part is empty or has spaces")

    strings = {k: _string(meta, k) for k in _STRING_KEYS}
    for key in _PORT_KEYS:
        _port(meta, key)
    labels = _labels(meta)
    ips = _ip_list(meta, "INSTANCE_IPS")
    if not ips:
        if not ipaddr.is_ip(ip_part):
            raise errors.NodeError(
                f"no valid IP address in node id {node_id!r} ({ip_part!r}) or metadata INSTANCE_IPS"
            )
        ips = (ip_part,)
    pod, _, id_ns = ident.rpartition(".") if "." in ident else (ident, "", "")
    namespace = strings["NAMESPACE"] or id_ns or domain.split(".", 1)[0]
    if not _LABEL.match(namespace) or len(namespace) > 63:
        raise errors.NodeError(f"invalid namespace {namespace!r} for node {node_id!r}: not a DNS-1123 label")
    return proxy_mod.Proxy(
        id=ProxyId(ident),
        type=ptype,
        ip_addresses=ips,
        pod_name=strings["NAME"] or pod,
        namespace=namespace,
        dns_domain=domain,
        cluster_id=ClusterId(strings["CLUSTER_ID"] or default_cluster),
        network=strings["NETWORK"],
        mesh_id=strings["MESH_ID"],
        labels=MappingProxyType(labels),
        service_account=strings["SERVICE_ACCOUNT"],
        requested_network_view=_list(meta, "REQUESTED_NETWORK_VIEW"),
        metadata=MappingProxyType(dict(meta)),
    )


def _string(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key, "")
    if not isinstance(value, str):
        raise errors.NodeError(f"node metadata {key} must be a string, got {type(value).__name__}")
    return value


def _port(meta: Mapping[str, Any], key: str) -> int | None:
    value = meta.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number != int(number) or not 0 < number < 65536:
        raise errors.NodeError(f"node metadata {key} must be a port number (1-65535), got {value!r}")
    return int(number)


def _labels(meta: Mapping[str, Any]) -> dict[str, str]:
    value = meta.get("LABELS", {})
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise errors.NodeError(f"node metadata LABELS must be a map of strings, got {type(value).__name__}")
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    if bad:
        raise errors.NodeError(f"node metadata LABELS must map strings to strings; bad value for {bad[0]!r}")
    return dict(value)


def _list(meta: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """Istio's StringList: a comma-separated string (as the agent sends it) or a list of strings."""
    value = meta.get(key)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = [x.strip() for x in value.split(",")]
    elif isinstance(value, list) and all(isinstance(x, str) for x in value):
        items = [x.strip() for x in value]
    else:
        raise errors.NodeError(f"node metadata {key} must be a comma-separated string, got {value!r}")
    return tuple(x for x in items if x)


def _ip_list(meta: Mapping[str, Any], key: str) -> tuple[str, ...]:
    ips = _list(meta, key)
    bad = [ip for ip in ips if not ipaddr.is_ip(ip)]
    if bad:
        raise errors.NodeError(f"node metadata {key} has an invalid IP address {bad[0]!r}")
    return ips
