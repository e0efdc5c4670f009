"""A minimal SDS server on a unix socket: serves `default` (a workload cert) and `ROOTCA` to Envoy.

Only what the xds integration tests need to exercise the generated mTLS config with real Envoy;
the agent's real SDS server belongs to the security work.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import any_pb2

from tests.support import secpki

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def _secrets(ca: secpki.CA, pair: secpki.Pair) -> dict[str, secret_pb2.Secret]:
    return {
        "default": secret_pb2.Secret(
            name="default",
            tls_certificate=common_pb2.TlsCertificate(
                certificate_chain=base_pb2.DataSource(inline_bytes=pair.cert_pem),
                private_key=base_pb2.DataSource(inline_bytes=pair.key_pem),
            ),
        ),
        "ROOTCA": secret_pb2.Secret(
            name="ROOTCA",
            validation_context=common_pb2.CertificateValidationContext(
                trusted_ca=base_pb2.DataSource(inline_bytes=ca.pem)
            ),
        ),
    }


class _Servicer(sds_pb2_grpc.SecretDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, secrets: dict[str, secret_pb2.Secret]) -> None:
        self.secrets = secrets
        self.version = 0

    async def StreamSecrets(
        self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        sent: frozenset[str] = frozenset()
        async for req in requests:
            names = frozenset(req.resource_names)
            if names == sent:
                continue  # an ACK (or NACK) of what we sent
            sent = names
            self.version += 1
            out = discovery_pb2.DiscoveryResponse(
                version_info=str(self.version), type_url=SECRET_TYPE, nonce=str(self.version)
            )
            for name in sorted(names):
                if name in self.secrets:
                    packed = any_pb2.Any()
                    packed.Pack(self.secrets[name])
                    out.resources.append(packed)
            yield out


@contextlib.asynccontextmanager
async def serve(socket_path: str, ca: secpki.CA, pair: secpki.Pair) -> AsyncIterator[None]:
    server = grpc.aio.server()
    sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(_Servicer(_secrets(ca, pair)), server)
    server.add_insecure_port(f"unix:{socket_path}")
    await server.start()
    try:
        yield
    finally:
        await server.stop(0.1)
