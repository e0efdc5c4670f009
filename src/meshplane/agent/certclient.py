"""Client of the CA: `istio.v1.auth.IstioCertificateService/CreateCertificate` over TLS.

Like Istio's citadel client (security/pkg/nodeagent/caclient/providers/citadel): per-RPC bearer
token read fresh from the token file, `clusterid` metadata, the requested TTL in seconds, and a
chain of one entry or fewer is refused.
"""

from __future__ import annotations

import logging

import grpc

from meshplane.agent import errors, upstream
from meshplane.runtime.logging import kv
from meshplane.security import caproto

log = logging.getLogger(__name__)


class CertClient:
    def __init__(self, target: upstream.Upstream, timeout: float = 10.0) -> None:
        self._target = target
        self._timeout = timeout

    async def create(self, csr_pem: bytes, ttl_seconds: int) -> list[str]:
        """Send the CSR; return the chain (leaf first, root last) or raise an AgentError."""
        metadata = upstream.call_metadata(self._target)
        channel = await upstream.connect(self._target, self._timeout)
        try:
            stub = caproto.CertificateStub(channel)
            request = caproto.IstioCertificateRequest(
                csr=csr_pem.decode("ascii"), validity_duration=ttl_seconds
            )
            response = await stub.CreateCertificate(request, metadata=metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as e:
            raise errors.CertificateError(
                f"CreateCertificate at {self._target.address} failed: {e.code().name}: {e.details()}"
            ) from e
        finally:
            await channel.close()
        chain = [str(c) for c in response.cert_chain]
        if len(chain) <= 1:
            raise errors.CertificateError(f"CA returned a chain of {len(chain)} entries; need leaf and root")
        log.debug("certificate received %s", kv(ca=self._target.address, entries=len(chain)))
        return chain
