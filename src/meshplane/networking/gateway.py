"""Istio's Gateway (networking.istio.io): which ports a router proxy opens and for which hosts.

Only what the east-west gateway needs is generated (TLS PASSTHROUGH and AUTO_PASSTHROUGH by SNI,
plain HTTP and TCP servers); every field Istio validates on those is validated here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from meshplane.model import crfields as fields
from meshplane.networking import hosts, objects

log = logging.getLogger(__name__)

_EMPTY: Mapping[str, str] = MappingProxyType({})


class ServerProtocol(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    GRPC = "GRPC"
    GRPC_WEB = "GRPC-WEB"
    HTTP2 = "HTTP2"
    MONGO = "MONGO"
    TCP = "TCP"
    TLS = "TLS"

    @property
    def is_http(self) -> bool:
        return self in (
            ServerProtocol.HTTP,
            ServerProtocol.GRPC,
            ServerProtocol.GRPC_WEB,
            ServerProtocol.HTTP2,
        )


class TLSMode(StrEnum):
    PASSTHROUGH = "PASSTHROUGH"
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    AUTO_PASSTHROUGH = "AUTO_PASSTHROUGH"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"
    OPTIONAL_MUTUAL = "OPTIONAL_MUTUAL"


@dataclass(frozen=True, slots=True)
class Port:
    number: int
    protocol: ServerProtocol
    name: str = ""
    target_port: int = 0


@dataclass(frozen=True, slots=True)
class ServerTLS:
    mode: TLSMode = TLSMode.SIMPLE
    credential_name: str = ""
    https_redirect: bool = False


@dataclass(frozen=True, slots=True)
class Server:
    port: Port
    hosts: tuple[str, ...]  # `ns/dnsName` or `dnsName`
    tls: ServerTLS | None = None
    name: str = ""
    bind: str = ""

    @property
    def passthrough(self) -> bool:
        return self.tls is not None and self.tls.mode is TLSMode.PASSTHROUGH

    @property
    def auto_passthrough(self) -> bool:
        return self.tls is not None and self.tls.mode is TLSMode.AUTO_PASSTHROUGH


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    namespace: str
    servers: tuple[Server, ...]
    selector: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Istio: the selector's labels must all be on the workload (an empty selector picks all)."""
        return all(labels.get(k) == v for k, v in self.selector.items())


def parse(obj: Mapping[str, Any], default_namespace: str = "default") -> Gateway:
    meta, spec = objects.meta(obj, "Gateway", default_namespace)
    r = fields.Reader(meta.ref)
    selector = r.labels(spec, "selector", "spec")
    servers = tuple(
        _server(r, item, f"spec.servers[{i}]")
        for i, item in enumerate(r.items(spec, "servers", "spec", required=True))
    )
    names: set[str] = set()
    for i, s in enumerate(servers):
        if s.name and s.name in names:
            raise r.fail(f"spec.servers[{i}].name", f"duplicate server name {s.name!r}")
        names.add(s.name)
    return Gateway(meta.name, meta.namespace, servers, MappingProxyType(selector))


def _server(r: fields.Reader, raw: object, path: str) -> Server:
    if not isinstance(raw, Mapping):
        raise r.fail(path, f"must be an object, got {type(raw).__name__}")
    port_raw = r.obj(raw, "port", path, required=True)
    ppath = f"{path}.port"
    number = r.port(port_raw, "number", ppath, required=True)
    proto_text = r.text(port_raw, "protocol", ppath, required=True)
    try:
        protocol = ServerProtocol(proto_text.upper())
    except ValueError:
        raise r.fail(
            f"{ppath}.protocol",
            f"unknown protocol {proto_text!r:.40}; want one of {', '.join(p.value for p in ServerProtocol)}",
        ) from None
    port = Port(number, protocol, r.text(port_raw, "name", ppath), r.port(port_raw, "targetPort", ppath))
    host_list = r.texts(raw, "hosts", path, required=True)
    for i, h in enumerate(host_list):
        problem = hosts.check_gateway_host(h)
        if problem:
            raise r.fail(f"{path}.hosts[{i}]", problem)
    tls = _tls(r, raw, path)
    if protocol in (ServerProtocol.HTTPS, ServerProtocol.TLS) and tls is None:
        raise r.fail(f"{path}.tls", f"is required for protocol {protocol}")
    terminates = tls is not None and tls.mode in (TLSMode.SIMPLE, TLSMode.MUTUAL) and not tls.https_redirect
    if tls is not None and terminates and protocol in (ServerProtocol.HTTPS, ServerProtocol.TLS):
        raw_tls = raw.get("tls") or {}
        if not raw_tls.get("credentialName") and not raw_tls.get("serverCertificate"):
            raise r.fail(f"{path}.tls", f"mode {tls.mode} needs credentialName or serverCertificate")
    return Server(port, host_list, tls, r.text(raw, "name", path), r.text(raw, "bind", path))


def _tls(r: fields.Reader, raw: Mapping[str, Any], path: str) -> ServerTLS | None:
    if raw.get("tls") is None:
        return None
    tls = r.obj(raw, "tls", path)
    tpath = f"{path}.tls"
    mode_text = r.text(tls, "mode", tpath) or "SIMPLE"
    try:
        mode = TLSMode(mode_text.upper())
    except ValueError:
        raise r.fail(
            f"{tpath}.mode",
            f"unknown mode {mode_text!r:.40}; want one of {', '.join(m.value for m in TLSMode)}",
        ) from None
    redirect = tls.get("httpsRedirect", False)
    if not isinstance(redirect, bool):
        raise r.fail(f"{tpath}.httpsRedirect", "must be a boolean")
    return ServerTLS(mode, r.text(tls, "credentialName", tpath), redirect)
