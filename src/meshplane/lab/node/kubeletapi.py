"""The node's kubelet API: the HTTPS endpoint kube-apiserver proxies pod subresources to.

The paths are the kubelet's (kubernetes/kubernetes pkg/kubelet/server/server.go):

| path                                      | serves                     | API subresource   |
|-------------------------------------------|----------------------------|-------------------|
| GET /containerLogs/NS/POD/CONTAINER       | the container's log        | pods/log          |
| GET /exec/NS/POD/CONTAINER?command=…      | a command in the pod       | pods/exec         |
| GET /attach/NS/POD/CONTAINER              | the container's output     | pods/attach       |
| GET /portForward/NS/POD                   | connections to pod ports   | pods/portforward  |
| GET /healthz                              | ok                         |                   |

The query parameters are those kube-apiserver sends (pkg/registry/core/pod/strategy.go
`LogLocation`, `streamLocation`): follow, previous, timestamps, sinceSeconds, sinceTime,
tailLines, limitBytes; command (repeated), input, output, error, tty. Exec and attach are
WebSocket upgrades speaking `v5.channel.k8s.io` / `v4.channel.k8s.io` (`remotecommand`); port
forwarding is SPDY/3.1 tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`, `portforward`).
A bare SPDY/3.1 upgrade (a POST, kubectl's fallback) is refused with 400 and a message saying so.

The node registers the endpoint's port as its Node's status.daemonEndpoints.kubeletEndpoint,
as a kubelet does, and listens on the node's address only. Who may call: a TLS client
certificate signed by the cluster's CA (the kubeconfig's certificate-authority) whose common name
is `kube-apiserver-kubelet-client`, the certificate the dev cluster's API server presents (a
kubelet's --client-ca-file; kube-apiserver's --kubelet-client-certificate). Anyone else on the
host is refused at the TLS handshake (no certificate) or with 403 (another name). The serving
certificate is self-signed: kube-apiserver does not verify kubelets' certificates unless given
--kubelet-certificate-authority, and neither does the dev cluster.

Exec runs the command in the pod's network namespace as the container's user (`podexec`, as
`meshplane lab exec`), netns mode only: loopback-mode pods have no namespace of their own, and
exec there is refused with 400.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshplane.lab import errors, podexec
from meshplane.lab.node import containerlog, podworker, portforward, remotecommand
from meshplane.lab.node import settings as settings_mod
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

CLIENT_NAME = "kube-apiserver-kubelet-client"
NO_PROTOCOL = "no supported WebSocket subprotocol offered"  # kubeletproxy.probe looks for it
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Pods(Protocol):
    settings: settings_mod.Settings

    def worker_of(self, namespace: str, name: str) -> podworker.PodWorker | None: ...


ERROR_HEADER = "X-Kubelet-Error"  # the message again: a refused WebSocket handshake drops the body


def _bad(message: str, code: int = 400) -> web.Response:
    return web.Response(
        status=code, text=message + "\n", content_type="text/plain", headers={ERROR_HEADER: message}
    )


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "") in ("1", "true", "True")


def _int(request: web.Request, name: str, minimum: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        v = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: invalid integer {raw!r}\n") from None
    if v < minimum:
        raise web.HTTPBadRequest(text=f"{name}: must be at least {minimum}\n")
    return v


def log_options(request: web.Request, now_ns: int) -> containerlog.Options:
    since_ns: int | None = None
    if (secs := _int(request, "sinceSeconds", 1)) is not None:
        since_ns = now_ns - secs * 1_000_000_000
    if since_time := request.query.get("sinceTime"):
        try:
            since_ns = containerlog.parse_timestamp(since_time)
        except ValueError as e:
            raise web.HTTPBadRequest(text=f"sinceTime: {e}\n") from None
    return containerlog.Options(
        since_ns=since_ns,
        tail_lines=_int(request, "tailLines", 0),
        timestamps=_flag(request, "timestamps"),
        limit_bytes=_int(request, "limitBytes", 1),
    )


class KubeletServer:
    def __init__(self, host: str, ca_pem: bytes) -> None:
        self.pods: Pods | None = None  # set by serve(), once the kubelet exists
        self.host = host
        self.ca_pem = ca_pem
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        ctx = await asyncio.to_thread(server_ssl_context, self.host, self.ca_pem)
        app = web.Application(middlewares=[self._authenticate])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        app.router.add_route("*", "/exec/{ns}/{pod}/{container}", self._exec)
        app.router.add_route("*", "/attach/{ns}/{pod}/{container}", self._attach)
        app.router.add_route("*", "/portForward/{ns}/{pod}", self._port_forward)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0, ssl_context=ctx)
        await site.start()
        self._runner = runner
        sockets = getattr(site._server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        log.info("kubelet API listening %s", kv(address=self.host, port=self.port))
        return self.port

    def serve(self, pods: Pods) -> None:
        self.pods = pods

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        names = [v for rdn in (cert or {}).get("subject", ()) for k, v in rdn if k == "commonName"]
        if CLIENT_NAME not in names:
            return _bad(f"Forbidden (user={','.join(names) or 'unknown'}, verb=get)", 403)
        if self.pods is None and request.path != "/healthz":
            return _bad("the kubelet is starting", 503)
        resp: web.StreamResponse = await handler(request)
        return resp

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _worker(self, request: web.Request) -> podworker.PodWorker:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        assert self.pods is not None
        w = self.pods.worker_of(ns, name)
        if w is None:
            msg = f'pod "{name}" in namespace "{ns}" is not on this node'
            raise web.HTTPNotFound(text=msg + "\n", headers={ERROR_HEADER: msg})
        return w

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        w = self._worker(request)
        container = request.match_info["container"]
        if container not in w.container_names():
            return _bad(f'container "{container}" in pod "{w.name}" is not valid')
        opts = log_options(request, time.time_ns())
        path = w.paths.log(container)
        if _flag(request, "previous"):
            path = containerlog.previous_of(path)
            if not await asyncio.to_thread(path.exists):
                return _bad(f'previous terminated container "{container}" in pod "{w.name}" not found')
        elif not await asyncio.to_thread(path.exists):
            return _bad(f'container "{container}" in pod "{w.name}" is waiting to start: ContainerCreating')
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        if not _flag(request, "follow") or _flag(request, "previous"):
            body = await asyncio.to_thread(containerlog.read, path, opts)
            resp.content_length = len(body)
            await resp.prepare(request)
            await resp.write(body)
            await resp.write_eof()
            return resp
        await resp.prepare(request)
        async for chunk in containerlog.follow(path, opts, lambda: w.running(container)):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    def _upgrade_check(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _bad(
                f"{request.method} with Upgrade {request.headers.get('Upgrade', '(none)')!r}: this "
                f"lab node speaks only the WebSocket protocols {', '.join(remotecommand.PROTOCOLS)} "
                "(kubectl 1.30 and later); SPDY/3.1 is not supported"
            )
        if remotecommand.negotiated(request) is None:
            return _bad(NO_PROTOCOL + "; supported: " + ", ".join(remotecommand.PROTOCOLS))
        return None

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        w = self._worker(request)
        container = request.match_info["container"]
        if container not in w.container_names():
            return _bad(f'container "{container}" in pod "{w.name}" is not valid')
        assert self.pods is not None
        network = self.pods.settings.network
        if network is None:
            return _bad(
                "exec needs the pod's own network namespace: this lab runs in loopback mode, where "
                "pods share the host's network (use `meshplane lab up` in netns mode)"
            )
        if not w.running(container):
            return _bad(f'container "{container}" in pod "{w.name}" is not running')
        command = request.query.getall("command", [])
        try:
            argv = podexec.argv(network.plan, w.pod, container, list(command))
        except errors.ContainerConfigError as e:
            return _bad(str(e))
        if (refused := self._upgrade_check(request)) is not None:  # after every other check
            return refused
        tty = _flag(request, "tty")
        log.info("exec %s", kv(pod=f"{w.ns}/{w.name}", container=container, command=command[:1]))
        await remotecommand.exec_session(
            request,
            argv,
            podexec.env(w.pod),
            stdin=_flag(request, "input"),
            stdout=_flag(request, "output"),
            stderr=_flag(request, "error") and not tty,
            tty=tty,
        )
        return web.Response()  # aiohttp ignores it: the WebSocket response was sent

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        w = self._worker(request)
        container = request.match_info["container"]
        if container not in w.container_names():
            return _bad(f'container "{container}" in pod "{w.name}" is not valid')
        if _flag(request, "input") or _flag(request, "tty"):
            return _bad(
                f'container "{container}" in pod "{w.name}" runs without stdin and tty (the lab '
                "node does not support spec.containers[].stdin/tty): attach without -i/-t"
            )
        if not w.running(container):
            return _bad(f'container "{container}" in pod "{w.name}" is not running')
        if (refused := self._upgrade_check(request)) is not None:  # after every other check
            return refused
        entries = containerlog.follow_entries(
            w.paths.log(container), containerlog.Options(tail_lines=0), lambda: w.running(container)
        )
        await remotecommand.attach_session(request, entries)
        return web.Response()

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        w = self._worker(request)
        if not w.state.pod_ip:
            return _bad(f'pod "{w.name}" has no IP yet')
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _bad(
                f"{request.method} with Upgrade {request.headers.get('Upgrade', '(none)')!r}: this lab "
                f"node forwards ports only as {portforward.PROTOCOL} (SPDY tunnelled in a WebSocket, "
                "kubectl 1.31 and later)"
            )
        offered = [
            p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")
        ]
        if portforward.PROTOCOL not in offered:
            return _bad(NO_PROTOCOL + "; supported: " + portforward.PROTOCOL)
        await portforward.serve(request, f"{w.ns}/{w.name}", w.state.pod_ip)
        return web.Response()


def server_ssl_context(host: str, ca_pem: bytes) -> ssl.SSLContext:
    """A self-signed serving certificate for `host`, and client certificates required, verified
    against the cluster's CA. Blocking (key generation, a private temp dir)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@{int(time.time())}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="meshplane-kubelet-") as d:
        cert_file, key_file = Path(d) / "tls.crt", Path(d) / "tls.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.touch(mode=0o600)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ctx.load_cert_chain(str(cert_file), str(key_file))
    ctx.load_verify_locations(cadata=ca_pem.decode())
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
