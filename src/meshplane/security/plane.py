"""The control plane's security parts built together, for the composition root (`meshplane discovery`).

    plane = await security.plane.build(primary_client, ClusterId("cluster1"), "istio-system",
                                       remotes, metrics_registry)
    server.add_generic_rpc_handlers((plane.cert_service.handler(),))   # 15012 (and 15010)
    creds = plane.serving_credentials(["istiod.istio-system.svc", ...], ["10.0.0.5"])
    ads_hook = plane.xds_auth.authorize_stream                           # XDS_AUTH on 15012

The per-cluster controllers (nscontroller.NamespaceController, webhookpatch.WebhookPatcher) are
started by the root for each led cluster with `plane.ca.root_pem` as their CA bundle; the root
also runs `plane.rotator(...)` (carotation.CaRotator), which swaps the CA when its Secrets change
and hands them the new trust bundle. The 15012 credentials are dynamic: after a swap
`reissue_serving` makes the next TLS handshakes present a certificate from the new CA.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import grpc
import lightkube
from prometheus_client import CollectorRegistry

from meshplane.model.ids import ClusterId
from meshplane.runtime import clock as clock_mod
from meshplane.runtime.logging import kv
from meshplane.security import (
    authenticate,
    ca,
    carotation,
    castore,
    certservice,
    metrics,
    rootrenew,
    spiffe,
    tokenreview,
    xdsauth,
)

log = logging.getLogger(__name__)


@dataclass
class SecurityPlane:
    ca: ca.MeshCA
    chain: authenticate.Chain
    cert_service: certservice.CertificateService
    xds_auth: xdsauth.XdsAuthenticator
    store: castore.CaStore  # `store.source`: "cacerts" or "istio-ca-secret"
    metrics: metrics.CaMetrics
    _grpc_names: tuple[list[str], list[str]] | None = field(default=None, init=False)
    _grpc_next: grpc.ServerCertificateConfiguration | None = field(default=None, init=False)
    _grpc_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def ca_source(self) -> str:
        return self.store.source

    def serving_cert(self, dns_names: Iterable[str], ip_addresses: Iterable[str] = ()) -> tuple[bytes, bytes]:
        """(PEM chain, PEM key) of the control plane's TLS cert, signed by the mesh CA."""
        chain, key = self.ca.serving_cert(dns_names, ip_addresses)
        return "".join(chain).encode(), key

    def serving_credentials(
        self, dns_names: Iterable[str], ip_addresses: Iterable[str] = ()
    ) -> grpc.ServerCredentials:
        """TLS credentials for 15012, re-read by gRPC before each handshake (see reissue_serving).
        grpcio cannot "verify the client cert if given" (Go's VerifyClientCertIfGiven), so clients
        authenticate with tokens; client-cert callers work only with require_client_auth."""
        names = (list(dns_names), list(ip_addresses))
        chain, key = self.serving_cert(*names)
        self._grpc_names = names

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            # gRPC core calls this on its own threads before every handshake; None = no change
            with self._grpc_lock:
                nxt, self._grpc_next = self._grpc_next, None
            return nxt

        initial = grpc.ssl_server_certificate_configuration([(key, chain)])
        return grpc.dynamic_ssl_server_credentials(initial, fetch)

    def reissue_serving(self) -> None:
        """A new 15012 certificate from the CA in use, for the next handshakes (blocking: key gen)."""
        if self._grpc_names is None:
            return
        chain, key = self.serving_cert(*self._grpc_names)
        config = grpc.ssl_server_certificate_configuration([(key, chain)])
        with self._grpc_lock:
            self._grpc_next = config

    def renewer(
        self, cluster_id: str, interval: float, grace_percent: int, jitter: bool
    ) -> rootrenew.RootRenewer:
        """Renews the self-signed root near its expiry (run() it; a no-op for a plugged-in CA)."""
        return rootrenew.RootRenewer(
            self.store, cluster_id=cluster_id, interval=interval, grace_percent=grace_percent, jitter=jitter
        )

    def rotator(
        self,
        client: lightkube.AsyncClient,
        cluster_id: str,
        transition: float,
        clock: clock_mod.Clock | None = None,
    ) -> carotation.CaRotator:
        """Watches the CA Secrets of this plane's namespace; subscribe the publishers, then run()."""
        return carotation.CaRotator(
            client,
            self.store,
            self.ca,
            self.metrics,
            cluster_id=cluster_id,
            transition=transition,
            clock=clock,
        )


async def build(
    primary_client: lightkube.AsyncClient,
    cluster_id: ClusterId,
    namespace: str,
    remotes: authenticate.RemoteReviewers,
    registry: CollectorRegistry,
    *,
    trust_domain: str = spiffe.DEFAULT_TRUST_DOMAIN,
    default_ttl: dt.timedelta = ca.DEFAULT_WORKLOAD_TTL,
    max_ttl: dt.timedelta = ca.MAX_WORKLOAD_TTL,
    local_aliases: Sequence[ClusterId] = (),
    xds_identity_check: bool = True,
    root_ttl: dt.timedelta = ca.SELF_SIGNED_ROOT_TTL,
) -> SecurityPlane:
    """Load (or create) the CA from the primary and wire the authenticators and services."""
    store = castore.CaStore(primary_client, namespace, org=trust_domain, root_ttl=root_ttl)
    bundle = await store.load()
    mesh = ca.MeshCA(bundle, default_ttl=default_ttl, max_ttl=max_ttl)
    chain = authenticate.Chain(
        [
            authenticate.ClientCertAuthenticator(mesh),
            authenticate.KubeJwtAuthenticator(
                cluster_id,
                tokenreview.KubeTokenReviewer(primary_client, cluster_id),
                remotes,
                trust_domain=trust_domain,
                local_aliases=local_aliases,
            ),
        ]
    )
    ca_metrics = metrics.CaMetrics(registry)
    service = certservice.CertificateService(mesh, chain, ca_metrics)
    log.info("mesh CA ready %s", kv(cluster=cluster_id, namespace=namespace, source=store.source))
    return SecurityPlane(
        ca=mesh,
        chain=chain,
        cert_service=service,
        xds_auth=xdsauth.XdsAuthenticator(chain, identity_check=xds_identity_check),
        store=store,
        metrics=ca_metrics,
    )
