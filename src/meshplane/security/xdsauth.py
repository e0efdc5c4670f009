"""Istio's XDS_AUTH for ADS streams: the CA's authenticator chain plus the identity check.

The ADS server calls `authorize_stream` once per stream, after it has parsed the node of the first
request into a Proxy: the caller must authenticate (UNAUTHENTICATED otherwise), and one of its
SPIFFE identities must name the proxy's namespace and service account (pilot/pkg/xds/auth.go
`checkConnectionIdentity`, PERMISSION_DENIED otherwise). The server layer sits above this one, so
the hook speaks grpc and model types only; `status_code` maps the raised error to a gRPC status.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from meshplane.model import proxy as proxy_mod
from meshplane.runtime.logging import kv
from meshplane.security import authenticate, errors, spiffe

log = logging.getLogger(__name__)


class XdsAuthenticator:
    def __init__(self, chain: authenticate.Chain, *, identity_check: bool = True) -> None:
        self._chain = chain
        self.identity_check = identity_check

    async def hook(self, context: grpc.aio.ServicerContext[Any, Any], proxy: proxy_mod.Proxy) -> None:
        """The ADS server's `auth` hook (server.ads.XdsAuth): aborts the stream with
        UNAUTHENTICATED or PERMISSION_DENIED and a message naming the reason."""
        try:
            await self.authorize_stream(context, proxy)
        except errors.SecurityError as e:
            await context.abort(status_code(e), str(e))

    async def authorize_stream(
        self, context: grpc.aio.ServicerContext[Any, Any], proxy: proxy_mod.Proxy
    ) -> authenticate.Caller:
        """The authenticated caller; raises AuthenticationError or PermissionDenied."""
        return await self.authorize(authenticate.request_from_context(context), proxy)

    async def authorize(
        self, request: authenticate.AuthRequest, proxy: proxy_mod.Proxy
    ) -> authenticate.Caller:
        try:
            caller = await self._chain.authenticate(request)
        except errors.AuthenticationError as e:
            log.warning(
                "xDS authentication failed %s",
                kv(proxy=proxy.id, cluster=proxy.cluster_id, peer=request.peer, reason=str(e)),
            )
            raise
        if self.identity_check:
            try:
                check_identity(caller, proxy)
            except errors.PermissionDenied as e:
                log.warning(
                    "unauthorized xDS %s", kv(proxy=proxy.id, cluster=proxy.cluster_id, reason=str(e))
                )
                raise
        if caller.cluster_id and proxy.cluster_id and caller.cluster_id != proxy.cluster_id:
            log.info(
                "proxy metadata CLUSTER_ID differs from the authenticated cluster %s",
                kv(proxy=proxy.id, metadata_cluster=proxy.cluster_id, token_cluster=caller.cluster_id),
            )
        return caller


def check_identity(caller: authenticate.Caller, proxy: proxy_mod.Proxy) -> spiffe.Identity:
    """The first identity matching the proxy's namespace and SERVICE_ACCOUNT (empty = not checked,
    as Istio does); PermissionDenied names both sides otherwise."""
    namespaces = {n for n in (proxy.namespace, str(proxy.metadata.get("NAMESPACE") or "")) if n}
    sa = proxy.service_account or str(proxy.metadata.get("SERVICE_ACCOUNT") or "")
    for raw in caller.identities:
        try:
            ident = spiffe.parse(raw)
        except ValueError:
            continue
        if any(ident.namespace != n for n in namespaces):
            continue
        if sa and ident.service_account != sa:
            continue
        return ident
    want = "/".join([",".join(sorted(namespaces)) or "*", sa or "*"])
    raise errors.PermissionDenied(
        f"authorization failed: no identities ({list(caller.identities)}) matched {want}"
    )


def status_code(error: BaseException) -> grpc.StatusCode:
    """The gRPC status the ADS server closes the stream with for an error from this module."""
    if isinstance(error, errors.PermissionDenied):
        return grpc.StatusCode.PERMISSION_DENIED
    if isinstance(error, errors.AuthenticationError):
        return grpc.StatusCode.UNAUTHENTICATED
    return grpc.StatusCode.INTERNAL
