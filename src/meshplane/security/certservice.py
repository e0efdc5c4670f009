"""`istio.v1.auth.IstioCertificateService/CreateCertificate` on a grpc.aio server.

The handler takes raw bytes so that even an undecodable request is answered (INVALID_ARGUMENT),
counted and logged, and never reaches grpc's generic "exception deserializing" path. Every
refusal carries a status whose message names the reason; nothing a caller sends can stop the
server. Order as istiod's: count, authenticate, check the requested identity, sign.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
from google.protobuf import message as pb_message

from meshplane.runtime.logging import kv
from meshplane.security import authenticate, ca, caproto, errors, metrics

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024


class _Refusal(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class CertificateService:
    """Signs workload CSRs for authenticated callers, only for their own identity."""

    def __init__(
        self,
        mesh_ca: ca.MeshCA,
        authenticator: authenticate.Chain,
        ca_metrics: metrics.CaMetrics,
        *,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.ca = mesh_ca
        self._auth = authenticator
        self._m = ca_metrics
        self._max = max_request_bytes

    def handler(self) -> grpc.GenericRpcHandler:
        """Add to a server: `server.add_generic_rpc_handlers((service.handler(),))`."""
        method = grpc.unary_unary_rpc_method_handler(self._create_raw)
        return grpc.method_handlers_generic_handler(caproto.SERVICE_NAME, {caproto.METHOD_NAME: method})

    async def _create_raw(self, raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        self._m.csr.inc()
        peer = context.peer() or ""
        try:
            request = authenticate.request_from_context(context)
            response = await self.create_certificate(raw, request)
            return bytes(response.SerializeToString())
        except _Refusal as r:
            self._m.request_errors.labels(reason=r.reason).inc()
            log.warning("CreateCertificate refused %s", kv(peer=peer, code=r.code.name, reason=str(r)))
            context.set_code(r.code)
            context.set_details(str(r))
            return b""
        except Exception:
            self._m.request_errors.labels(reason=metrics.REASON_INTERNAL).inc()
            log.exception("CreateCertificate failed %s", kv(peer=peer))
            context.set_code(grpc.StatusCode.INTERNAL)
            context.set_details("internal error while signing the certificate")
            return b""

    async def create_certificate(self, raw: bytes, request: authenticate.AuthRequest) -> Any:
        """Returns an IstioCertificateResponse or raises _Refusal."""
        if len(raw) > self._max:
            raise _Refusal(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request of {len(raw)} bytes exceeds the limit of {self._max} bytes",
                metrics.REASON_TOO_LARGE,
            )
        try:
            req = caproto.IstioCertificateRequest.FromString(raw)
        except (pb_message.DecodeError, ValueError, RuntimeError) as e:
            self._m.csr_parsing_error.inc()
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT,
                "malformed request: not an istio.v1.auth.IstioCertificateRequest",
                metrics.REASON_MALFORMED,
            ) from e
        try:
            caller = await self._auth.authenticate(request)
        except errors.AuthenticationError as e:
            self._m.authn_error.inc()
            raise _Refusal(
                grpc.StatusCode.UNAUTHENTICATED, f"request authenticate failure: {e}", metrics.REASON_AUTHN
            ) from e
        fields = req.metadata.fields
        if _meta_string(fields, caproto.META_IMPERSONATED_IDENTITY):
            self._m.authn_error.inc()
            raise _Refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                "request impersonation authentication failure: impersonation is not allowed",
                metrics.REASON_AUTHN,
            )
        if _meta_string(fields, caproto.META_CERT_SIGNER):
            self._m.sign_error.labels(error=metrics.SIGN_ERR_UNSUPPORTED).inc()
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT,
                "CertSigner metadata is not supported by this CA",
                metrics.REASON_SIGN,
            )
        try:
            csr = ca.parse_csr(req.csr)
            requested = ca.csr_uris(csr)
        except errors.CsrError as e:
            self._m.csr_parsing_error.inc()
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT, f"CSR parsing error: {e}", metrics.REASON_CSR
            ) from e
        identities = authorize_identities(requested, caller)
        if identities is None:
            self._m.id_extraction_error.inc()
            raise _Refusal(
                grpc.StatusCode.PERMISSION_DENIED,
                f"the CSR requests identities {sorted(set(requested))} but the caller is "
                f"{list(caller.identities)}",
                metrics.REASON_PERMISSION,
            )
        try:
            ttl = self.ca.workload_ttl(req.validity_duration)
        except errors.TtlError as e:
            self._m.sign_error.labels(error=metrics.SIGN_ERR_TTL).inc()
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT, f"CSR signing error ({e})", metrics.REASON_SIGN
            ) from e
        try:
            chain = await asyncio.to_thread(self.ca.sign_workload, csr, identities, ttl)
        except Exception as e:
            self._m.sign_error.labels(error=metrics.SIGN_ERR_CERT_GEN).inc()
            log.exception("signing failed %s", kv(cluster=caller.cluster_id, identity=identities[0]))
            raise _Refusal(
                grpc.StatusCode.INTERNAL,
                "CSR signing error (certificate generation failed)",
                metrics.REASON_SIGN,
            ) from e
        self._m.success.inc()
        log.info(
            "issued workload certificate %s",
            kv(
                identity=identities[0],
                cluster=caller.cluster_id,
                pod=caller.pod_name or None,
                ttl=int(ttl.total_seconds()),
                source=caller.source,
            ),
        )
        return caproto.IstioCertificateResponse(cert_chain=chain)


def authorize_identities(requested: list[str], caller: authenticate.Caller) -> list[str] | None:
    """What the leaf may name: the caller's identities when the CSR asks for none (as Istio does),
    the requested ones when each is one of the caller's, else None (refused)."""
    if not requested:
        return list(caller.identities)
    wanted = list(dict.fromkeys(requested))
    if all(w in caller.identities for w in wanted):
        return wanted
    return None


def _meta_string(fields: Any, key: str) -> str:
    return str(fields[key].string_value) if key in fields else ""
