"""Envoy's secret discovery service on a unix socket: `default` (key + chain) and `ROOTCA`.

The names are Istio's (pkg/security: WorkloadKeyCertResourceName, RootCertReqResourceName); the
generators reference them through the bootstrap's `sds-grpc` cluster. StreamSecrets is state of
the world: a response carries every requested secret we know, and is sent when a stream asks for
a new set of names and whenever the certificate rotates. Envoy swaps the TLS context in place for
new connections; open connections keep theirs, so rotation never drops traffic. A request that
arrives before the first certificate waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterable

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import any_pb2

from meshplane.agent import uds, workloadcert
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

WORKLOAD = "default"
ROOT = "ROOTCA"
TYPE_URL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def secret(name: str, cert: workloadcert.WorkloadCert) -> secret_pb2.Secret | None:
    """The Envoy Secret for a name we serve, or None for a name we do not know."""
    if name == WORKLOAD:
        return secret_pb2.Secret(
            name=name,
            tls_certificate=common_pb2.TlsCertificate(
                certificate_chain=base_pb2.DataSource(inline_bytes=cert.chain_pem),
                private_key=base_pb2.DataSource(inline_bytes=cert.key_pem),
            ),
        )
    if name == ROOT:
        return secret_pb2.Secret(
            name=name,
            validation_context=common_pb2.CertificateValidationContext(
                trusted_ca=base_pb2.DataSource(inline_bytes=cert.root_pem)
            ),
        )
    return None


def response(
    names: Iterable[str], cert: workloadcert.WorkloadCert, version: str, nonce: str
) -> discovery_pb2.DiscoveryResponse:
    resources = []
    for name in sorted(set(names)):
        s = secret(name, cert)
        if s is not None:
            packed = any_pb2.Any()
            packed.Pack(s)
            resources.append(packed)
    return discovery_pb2.DiscoveryResponse(
        version_info=version, resources=resources, type_url=TYPE_URL, nonce=nonce
    )


class _StreamState:
    def __init__(self) -> None:
        self.names: frozenset[str] = frozenset()
        self.dirty = False
        self.closed = False
        self.sent_version = 0
        self.nonce = ""


class SdsServer(sds_pb2_grpc.SecretDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, store: workloadcert.Store, address: uds.UdsAddress, log_id: str = "") -> None:
        self._store = store
        self._address = address
        self._log_id = log_id
        self._server: grpc.aio.Server | None = None
        self._nonces = itertools.count(1)
        self.pushes = 0

    async def start(self) -> None:
        self._address.prepare()
        server = grpc.aio.server()
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(self, server)
        server.add_insecure_port(self._address.grpc_target)
        await server.start()
        self._server = server
        log.info("sds serving %s", kv(proxy=self._log_id, socket=self._address.envoy_pipe))

    async def stop(self, grace: float = 0.5) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self._address.cleanup()

    async def FetchSecrets(
        self, request: discovery_pb2.DiscoveryRequest, context: grpc.aio.ServicerContext
    ) -> discovery_pb2.DiscoveryResponse:
        cert = await self._store.wait_first()
        return response(request.resource_names, cert, str(self._store.version), str(next(self._nonces)))

    async def StreamSecrets(
        self,
        request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> None:
        state = _StreamState()
        wake = asyncio.Event()
        self._store.listen(wake)
        reader = asyncio.create_task(self._read(request_iterator, state, wake))
        try:
            while True:
                await wake.wait()
                wake.clear()
                if state.closed:
                    return
                cert = self._store.current
                if cert is None or not state.names:
                    continue
                if state.dirty or self._store.version != state.sent_version:
                    state.nonce = str(next(self._nonces))
                    version = self._store.version
                    await context.write(response(state.names, cert, str(version), state.nonce))
                    state.sent_version, state.dirty = version, False
                    self.pushes += 1
                    log.debug(
                        "sds push %s",
                        kv(proxy=self._log_id, names=",".join(sorted(state.names)), serial=cert.serial_hex),
                    )
        finally:
            self._store.unlisten(wake)
            reader.cancel()

    async def _read(
        self,
        requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
        state: _StreamState,
        wake: asyncio.Event,
    ) -> None:
        try:
            async for req in requests:
                if req.type_url and req.type_url != TYPE_URL:
                    log.warning("sds request for another type %s", kv(proxy=self._log_id, type=req.type_url))
                    continue
                if req.HasField("error_detail"):
                    log.warning(
                        "envoy rejected secrets %s",
                        kv(proxy=self._log_id, nonce=req.response_nonce, error=req.error_detail.message),
                    )
                names = frozenset(req.resource_names)
                unknown = sorted(n for n in names if n not in (WORKLOAD, ROOT))
                if unknown:
                    log.warning("sds request for unknown secrets %s", kv(proxy=self._log_id, names=unknown))
                if not req.response_nonce or names != state.names:
                    state.names, state.dirty = names, True
                    wake.set()
        except grpc.aio.AioRpcError:
            pass
        finally:
            state.closed = True
            wake.set()
