"""The Envoy v3 bootstrap of a proxy: node identity and metadata, the ADS cluster, SDS, admin.

As Istio's agent writes it (pkg/bootstrap, tools/packaging/common/envoy_bootstrap.json):
- node id `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN`, metadata from `ISTIO_META_*` env (prefix
  stripped), `ISTIO_METAJSON_*` (JSON objects; `ISTIO_METAJSON_LABELS` gives LABELS), POD_NAME,
  POD_NAMESPACE, SERVICE_ACCOUNT and INSTANCE_IP(S), plus pod labels from the downward-API file;
- `dynamic_resources`: ADS (State of the World or Delta) over the static cluster `xds-grpc`, which
  reaches the discovery address (`host:port`, plaintext or TLS verifying a root cert and the
  server name) or the agent's unix socket (`unix:///path`);
- `sds-grpc`: the agent's SDS unix socket, when given. A bootstrap without it marks the node
  `MESHPLANE_SDS: "false"` so the generators send it no config that needs the workload cert;
- admin on `LOCALHOST:15000` (the pod's localhost address, metadata MESHPLANE_LOCALHOST) or a
  unix socket. Nothing depends on shared memory, so Envoy runs with `--disable-hot-restart`.
The result is checked against Envoy's proto (field names, types) before it is returned.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

from meshplane import __version__
from meshplane.agent import errors
from meshplane.model.proxy import ProxyType
from meshplane.runtime import ipaddr

log = logging.getLogger(__name__)

XDS_CLUSTER = "xds-grpc"
SDS_CLUSTER = "sds-grpc"
DEFAULT_DISCOVERY = "istiod.istio-system.svc:15012"
DEFAULT_XDS_SERVER_NAME = "istiod.istio-system.svc"
DEFAULT_ADMIN_PORT = 15000
STATUS_PORT = 15021
PROMETHEUS_PORT = 15090
POD_LABELS_FILE = "/etc/istio/pod/labels"  # downward API, `key="value"` lines
LOCALHOST_KEY = "MESHPLANE_LOCALHOST"
SDS_KEY = "MESHPLANE_SDS"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# The typed configs the bootstrap embeds; importing them registers their types for the schema check.
_EMBEDDED = (tls_pb2.UpstreamTlsContext, http_protocol_options_pb2.HttpProtocolOptions)


@dataclass(frozen=True, slots=True)
class XdsTls:
    """TLS to the discovery address (15012): verify the server against `root_cert` and `server_name`."""

    root_cert: str  # a file path Envoy reads
    server_name: str = DEFAULT_XDS_SERVER_NAME


@dataclass(frozen=True, slots=True)
class BootstrapOptions:
    proxy_type: ProxyType
    pod_name: str
    namespace: str
    ips: tuple[str, ...]
    discovery_address: str = DEFAULT_DISCOVERY  # `host:port` or `unix:///path` (`unix:@name`: abstract)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    dns_domain: str = "cluster.local"
    delta: bool = False
    admin_address: str = ""  # `host:port`; default: the pod's localhost address, port 15000
    admin_socket: str = ""  # a unix socket path instead of a TCP admin address
    xds_tls: XdsTls | None = None
    sds_socket: str = ""  # the agent's SDS socket (Envoy pipe path; `@name` is abstract)
    # static gRPC metadata on the ADS stream (Istio's agent sends `clusterid`)
    xds_headers: Sequence[tuple[str, str]] = ()


def parse_address(text: str, what: str, allow_any_port: bool = False) -> tuple[str, int]:
    """`host:port` or `[v6]:port`; port 0 (any free port) only where `allow_any_port`."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host:
        raise errors.BootstrapError(f"{what} {text!r} is not HOST:PORT")
    low = 0 if allow_any_port else 1
    if not port.isdigit() or not low <= int(port) < 65536:
        raise errors.BootstrapError(f"{what} {text!r} has no valid port ({low}-65535)")
    return host, int(port)


def node_id(opts: BootstrapOptions) -> str:
    ns = opts.namespace
    return f"{opts.proxy_type}~{opts.ips[0]}~{opts.pod_name}.{ns}~{ns}.svc.{opts.dns_domain}"


def parse_downward_labels(text: str) -> dict[str, str]:
    """The downward API's `key="value"` lines (Istio's ParseDownwardAPI); bad lines are skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or not key:
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            log.warning("skipping unreadable pod label line %r", line[:80])
            continue
        if isinstance(value, str):
            out[key] = value
    return out


def metadata_from_env(env: Mapping[str, str], pod_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Node metadata as Istio's agent builds it (pkg/bootstrap/config.go GetNodeMetaData)."""
    meta: dict[str, Any] = {}
    for key, value in sorted(env.items()):
        if key.startswith("ISTIO_META_") and len(key) > len("ISTIO_META_"):
            meta[key.removeprefix("ISTIO_META_")] = value
    for key, value in sorted(env.items()):
        if not key.startswith("ISTIO_METAJSON_"):
            continue
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as e:
            raise errors.BootstrapError(f"env {key} is not valid JSON: {e}") from e
        if not isinstance(parsed, dict):
            raise errors.BootstrapError(f"env {key} must be a JSON object")
        if key == "ISTIO_METAJSON_LABELS":
            if not all(isinstance(v, str) for v in parsed.values()):
                raise errors.BootstrapError(f"env {key} must map label names to strings")
            meta["LABELS"] = parsed
        else:
            meta.update(parsed)
    for env_key, meta_key in (
        ("POD_NAME", "NAME"),
        ("POD_NAMESPACE", "NAMESPACE"),
        ("SERVICE_ACCOUNT", "SERVICE_ACCOUNT"),
    ):
        if env.get(env_key):
            meta[meta_key] = env[env_key]
    if pod_labels:
        labels = dict(meta.get("LABELS") or {})
        labels.update({k: v for k, v in pod_labels.items() if k != "pod-template-hash"})
        meta["LABELS"] = labels
    return meta


def _check(opts: BootstrapOptions) -> None:
    if not opts.pod_name or any(c.isspace() or c in "~" for c in opts.pod_name):
        raise errors.BootstrapError(f"pod name {opts.pod_name!r} is empty or has spaces or '~'")
    if not _DNS_LABEL.match(opts.namespace):
        raise errors.BootstrapError(f"namespace {opts.namespace!r} is not a DNS-1123 label")
    if not opts.ips:
        raise errors.BootstrapError("no instance IP: set INSTANCE_IP or --ip")
    for ip in opts.ips:
        if not ipaddr.is_ip(ip):
            raise errors.BootstrapError(f"instance IP {ip!r} is not an IP address")
    if not opts.dns_domain or "~" in opts.dns_domain:
        raise errors.BootstrapError(f"DNS domain {opts.dns_domain!r} is not valid")
    for key in opts.metadata:
        if not _META_KEY.match(key):
            raise errors.BootstrapError(f"node metadata key {key!r} is not a valid name")
    localhost = opts.metadata.get(LOCALHOST_KEY)
    if localhost and not ipaddr.is_ip(str(localhost)):
        raise errors.BootstrapError(f"{LOCALHOST_KEY} {localhost!r} is not an IP address")
    if opts.admin_address and opts.admin_socket:
        raise errors.BootstrapError("give an admin address or an admin socket, not both")
    if opts.xds_tls is not None:
        if opts.discovery_address.startswith("unix:"):
            raise errors.BootstrapError("TLS to the discovery address needs HOST:PORT, not a unix socket")
        if not Path(opts.xds_tls.root_cert).is_file():
            raise errors.BootstrapError(f"root certificate file {opts.xds_tls.root_cert!r} does not exist")
        if not opts.xds_tls.server_name:
            raise errors.BootstrapError("TLS to the discovery address needs a server name")
    for k, _ in opts.xds_headers:
        if not k or k != k.lower() or not re.match(r"^[a-z0-9._-]+$", k):
            raise errors.BootstrapError(
                f"xDS header name {k!r} must be lower-case letters, digits, '.', '_' or '-'"
            )


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _pipe(path: str) -> dict[str, Any]:
    return {"pipe": {"path": path}}


def _http2_options() -> dict[str, Any]:
    return {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {
                "http2_protocol_options": {
                    "connection_keepalive": {"interval": "30s", "timeout": "10s"},
                }
            },
        }
    }


def _static_cluster(name: str, address: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
        },
        "typed_extension_protocol_options": _http2_options(),
    }


def _xds_cluster(opts: BootstrapOptions) -> dict[str, Any]:
    target = opts.discovery_address
    if target.startswith("unix:"):
        path = (
            target.removeprefix("unix://") if target.startswith("unix://") else target.removeprefix("unix:")
        )
        if not path:
            raise errors.BootstrapError(f"discovery address {target!r} names no socket path")
        return _static_cluster(XDS_CLUSTER, _pipe(path))
    host, port = parse_address(target, "discovery address")
    cluster = _static_cluster(XDS_CLUSTER, _address(host, port))
    if not ipaddr.is_ip(host):
        cluster["type"] = "STRICT_DNS"
        cluster["dns_lookup_family"] = "V4_PREFERRED"
        cluster["respect_dns_ttl"] = True
    cluster["circuit_breakers"] = {
        "thresholds": [
            {"priority": p, "max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000}
            for p in ("DEFAULT", "HIGH")
        ]
    }
    cluster["upstream_connection_options"] = {"tcp_keepalive": {"keepalive_time": 300}}
    if opts.xds_tls is not None:
        name = opts.xds_tls.server_name
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": name,
                "common_tls_context": {
                    "alpn_protocols": ["h2"],
                    "validation_context": {
                        "trusted_ca": {"filename": opts.xds_tls.root_cert},
                        "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": name}}],
                    },
                },
            },
        }
    return cluster


def _admin(opts: BootstrapOptions, localhost: str) -> dict[str, Any]:
    if opts.admin_socket:
        address = _pipe(opts.admin_socket)
    elif opts.admin_address:
        address = _address(*parse_address(opts.admin_address, "admin address", allow_any_port=True))
    else:
        address = _address(localhost, DEFAULT_ADMIN_PORT)
    return {"address": address}


def _node_metadata(opts: BootstrapOptions) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "NAME": opts.pod_name,
        "NAMESPACE": opts.namespace,
        "INSTANCE_IPS": ",".join(opts.ips),
        "ISTIO_VERSION": f"meshplane-{__version__}",
        "ENVOY_STATUS_PORT": STATUS_PORT,
        "ENVOY_PROMETHEUS_PORT": PROMETHEUS_PORT,
    }
    meta.update(opts.metadata)
    if not opts.sds_socket:
        meta[SDS_KEY] = "false"
    return meta


def _service_cluster(meta: Mapping[str, Any], namespace: str) -> str:
    """Istio's node.cluster: `APP.NAMESPACE` from the app label, else the workload name."""
    labels = meta.get("LABELS") if isinstance(meta.get("LABELS"), Mapping) else {}
    app = labels.get("app") if isinstance(labels, Mapping) else None
    name = app or meta.get("WORKLOAD_NAME") or "istio-proxy"
    return f"{name}.{namespace}"


def build(opts: BootstrapOptions) -> dict[str, Any]:
    """The bootstrap as a JSON-ready dict, checked against Envoy's Bootstrap proto."""
    _check(opts)
    localhost = str(opts.metadata.get(LOCALHOST_KEY) or "127.0.0.1")
    meta = _node_metadata(opts)
    source = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
    grpc_service: dict[str, Any] = {"envoy_grpc": {"cluster_name": XDS_CLUSTER}}
    if opts.xds_headers:
        grpc_service["initial_metadata"] = [{"key": k, "value": v} for k, v in opts.xds_headers]
    clusters = [_xds_cluster(opts)]
    if opts.sds_socket:
        clusters.append(_static_cluster(SDS_CLUSTER, _pipe(opts.sds_socket)))
    doc: dict[str, Any] = {
        "node": {
            "id": node_id(opts),
            "cluster": _service_cluster(meta, opts.namespace),
            "metadata": meta,
        },
        "admin": _admin(opts, localhost),
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if opts.delta else "GRPC",
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [grpc_service],
            },
            "cds_config": source,
            "lds_config": source,
        },
        "static_resources": {"clusters": clusters},
        "layered_runtime": {
            "layers": [
                {
                    "name": "global config",
                    "static_layer": {
                        "overload.global_downstream_max_connections": 2147483647,
                        "re2.max_program_size.error_level": 32768,
                    },
                },
                {"name": "admin", "admin_layer": {}},
            ]
        },
    }
    try:
        json_format.ParseDict(doc, bootstrap_pb2.Bootstrap())
    except json_format.ParseError as e:
        raise errors.BootstrapError(f"bootstrap does not match Envoy's schema: {e}") from e
    return doc


def render(opts: BootstrapOptions) -> str:
    return json.dumps(build(opts), indent=2, sort_keys=True) + "\n"
