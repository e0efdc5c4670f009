"""Calling an admission webhook over HTTPS the way kube-apiserver does.

The target is `clientConfig.url`, or `clientConfig.service` resolved through the Service's
EndpointSlices at dial time (kube-apiserver's endpoint resolver: there is no kube-proxy here) while
TLS verifies the name `NAME.NAMESPACE.svc` against `caBundle` (the system roots when it is
empty). Errors carry Go's wording (`Post "https://...?timeout=10s": ...`) since users compare them
with what a real cluster prints.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import logging
import socket
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import abc as aiohttp_abc

from meshplane.devcluster import errors
from meshplane.runtime import jsonobj
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

SLICES = "discovery.k8s.io/endpointslices"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MAX_RESPONSE = 16 * 1024 * 1024
_BAD_CA = "could not get REST client: unable to load root certificates: unable to parse bytes as PEM block"


class Reader(Protocol):
    def peek(self, key: str, namespace: str, name: str) -> Obj | None: ...

    def items(self, key: str, namespace: str | None = None) -> Iterator[Obj]: ...


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # as Kubernetes prints it, with ?timeout=
    host: str  # the URL's host: TLS server name
    port: int
    service: tuple[str, str, int] | None = None  # (namespace, name, port) to resolve at dial time


def target(client_config: Obj, timeout_seconds: int) -> Target:
    """Where a webhook's clientConfig points (webhookutil.ClientManager.HookClient)."""
    query = f"?timeout={timeout_seconds}s"
    url = client_config.get("url")
    svc = client_config.get("service")
    if isinstance(url, str) and url:
        try:
            parsed = urllib.parse.urlsplit(url)
            port = parsed.port or 443
        except ValueError as e:
            raise errors.CallError(f"could not get REST client: invalid webhook url {url!r}") from e
        if parsed.scheme != "https" or not parsed.hostname:
            raise errors.CallError(
                f"could not get REST client: webhook url {url!r} must be https with a host"
            )
        return Target(url=url + query, host=parsed.hostname, port=port)
    if isinstance(svc, dict) and isinstance(svc.get("name"), str) and isinstance(svc.get("namespace"), str):
        port = svc.get("port") or 443
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise errors.CallError(f"could not get REST client: invalid service port {port!r}")
        host = f"{svc['name']}.{svc['namespace']}.svc"
        path = svc.get("path") or ""
        if not isinstance(path, str):
            raise errors.CallError(f"could not get REST client: invalid service path {path!r}")
        return Target(
            url=f"https://{host}:{port}{path}{query}",
            host=host,
            port=port,
            service=(str(svc["namespace"]), str(svc["name"]), port),
        )
    raise errors.CallError("could not get REST client: webhook clientConfig has neither url nor service")


def resolve_service(reader: Reader, namespace: str, name: str, port: int) -> tuple[str, int]:
    """An endpoint address for the Service's port (proxy.ResolveEndpoint, over EndpointSlices)."""
    svc = reader.peek("services", namespace, name)
    if svc is None:
        raise errors.CallError(f'services "{name}" not found')
    spec = jsonobj.as_obj(svc.get("spec"))
    svc_type = spec.get("type") or "ClusterIP"
    if svc_type not in ("ClusterIP", "LoadBalancer", "NodePort"):
        raise errors.CallError(f'unsupported service type "{svc_type}"')
    svc_port = next(
        (p for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("port") == port), None
    )
    if svc_port is None:
        raise errors.CallError(f'no service port {port} found for service "{name}"')
    port_name = svc_port.get("name") or ""
    target_port = svc_port.get("targetPort")
    for eps in reader.items(SLICES, namespace):
        labels = jsonobj.as_obj(jsonobj.as_obj(eps.get("metadata")).get("labels"))
        if labels.get(SERVICE_NAME_LABEL) != name:
            continue
        number = _slice_port(jsonobj.as_list(eps.get("ports")), port_name, target_port)
        if number is None:
            continue
        for ep in jsonobj.as_list(eps.get("endpoints")):
            if not isinstance(ep, dict) or jsonobj.as_obj(ep.get("conditions")).get("ready") is False:
                continue
            addrs = [a for a in jsonobj.as_list(ep.get("addresses")) if isinstance(a, str) and a]
            if addrs:
                return addrs[0], number
    raise errors.CallError(f'no endpoints available for service "{name}"')


def _slice_port(ports: list[Any], name: str, target_port: Any) -> int | None:
    for p in ports:
        if not isinstance(p, dict) or not isinstance(p.get("port"), int):
            continue
        if (p.get("name") or "") == name:
            return int(p["port"])
    for p in ports:
        if isinstance(p, dict) and isinstance(target_port, int) and p.get("port") == target_port:
            return target_port
    return None


_contexts: dict[str, ssl.SSLContext] = {}


def ssl_context(ca_bundle: Any) -> ssl.SSLContext:
    """A verifying client context trusting `caBundle` (base64 PEM), or the system roots if empty."""
    key = ca_bundle if isinstance(ca_bundle, str) else ""
    ctx = _contexts.get(key)
    if ctx is not None:
        return ctx
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if key:
        try:
            pem = base64.b64decode(key, validate=True).decode("ascii")
            ctx.load_verify_locations(cadata=pem)
        except (binascii.Error, ValueError, ssl.SSLError) as e:
            raise errors.CallError(_BAD_CA) from e
    else:
        ctx.load_default_certs()
    if len(_contexts) > 64:
        _contexts.clear()
    _contexts[key] = ctx
    return ctx


class _PinnedResolver(aiohttp_abc.AbstractResolver):
    """Dials the resolved endpoint while the URL (Host header, TLS name) keeps the service name."""

    def __init__(self, address: str, port: int) -> None:
        self._address = address
        self._port = port

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[Any]:
        fam = socket.AF_INET6 if ":" in self._address else socket.AF_INET
        return [
            {
                "hostname": host,
                "host": self._address,
                "port": self._port,
                "family": fam,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def post(reader: Reader, tgt: Target, ctx: ssl.SSLContext, body: bytes, timeout_s: float) -> bytes:
    """POST the AdmissionReview; the response body, or errors.CallError in Kubernetes' words."""
    where = f'Post "{tgt.url}"'
    dial = (tgt.host, tgt.port)
    try:
        async with asyncio.timeout(timeout_s):
            resolver: aiohttp_abc.AbstractResolver | None = None
            if tgt.service is not None:
                try:
                    dial = resolve_service(reader, *tgt.service)
                except errors.CallError as e:
                    raise errors.CallError(f"failed to call webhook: {where}: {e}") from None
                resolver = _PinnedResolver(*dial)
            connector = aiohttp.TCPConnector(ssl=ctx, resolver=resolver, force_close=True)
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.post(
                    tgt.url,
                    data=body,
                    headers={"Content-Type": "application/json", "Accept": "application/json, */*"},
                    allow_redirects=False,
                ) as resp,
            ):
                data = await resp.content.read(MAX_RESPONSE)
                if resp.status < 200 or resp.status > 299:
                    text = data[:512].decode("utf-8", "replace").strip()
                    why = f'an error on the server ("{text}") has prevented the request from succeeding'
                    raise errors.CallError(f"failed to call webhook: {why}")
                return data
    except TimeoutError as e:
        raise errors.CallError(f"failed to call webhook: {where}: context deadline exceeded") from e
    except aiohttp.ClientConnectorCertificateError as e:
        raise errors.CallError(
            f"failed to call webhook: {where}: {_tls_text(e.certificate_error, tgt.host)}"
        ) from e
    except aiohttp.ClientSSLError as e:
        raise errors.CallError(f"failed to call webhook: {where}: remote error: tls: {e}") from e
    except aiohttp.ClientConnectorError as e:
        raise errors.CallError(f"failed to call webhook: {where}: {_dial_text(e, dial)}") from e
    except aiohttp.ClientError as e:
        raise errors.CallError(f"failed to call webhook: {where}: {e}") from e


def _tls_text(err: Exception, host: str) -> str:
    msg = getattr(err, "verify_message", "") or str(err)
    if "Hostname mismatch" in msg or "IP address mismatch" in msg:
        return f"tls: failed to verify certificate: x509: certificate is not valid for {host}"
    return "tls: failed to verify certificate: x509: certificate signed by unknown authority"


def _dial_text(err: aiohttp.ClientConnectorError, dial: tuple[str, int]) -> str:
    addr = f"[{dial[0]}]:{dial[1]}" if ":" in dial[0] else f"{dial[0]}:{dial[1]}"
    if err.os_error.errno == errno.ECONNREFUSED:
        return f"dial tcp {addr}: connect: connection refused"
    if isinstance(err.os_error, socket.gaierror):
        return f"dial tcp: lookup {dial[0]}: no such host"
    return f"dial tcp {addr}: {err.os_error.strerror or err.os_error}"
