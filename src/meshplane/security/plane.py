"""The control plane's security parts built together, for the composition root (`meshplane discovery`).

    plane = await security.plane.build(primary_client, ClusterId("cluster1"), "istio-system",
                                       remotes, metrics_registry)
    server.add_generic_rpc_handlers((plane.cert_service.handler(),))   # 15012 (and 15010)
    creds = plane.serving_credentials(["istiod.istio-system.svc", ...], ["10.0.0.5"])
    ads_hook = plane.xds_auth.authorize_stream                           # XDS_AUTH on 15012

The per-cluster controllers (nscontroller.NamespaceController, webhookpatch.WebhookPatcher) are
started by the root for each led cluster with `plane.ca.root_pem` as their CA bundle.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
import lightkube
from prometheus_client import CollectorRegistry

from meshplane.model.ids import ClusterId
from meshplane.runtime.logging import kv
from meshplane.security import authenticate, ca, castore, certservice, metrics, spiffe, tokenreview, xdsauth

log = logging.getLogger(__name__)


@dataclass
class SecurityPlane:
    ca: ca.MeshCA
    chain: authenticate.Chain
    cert_service: certservice.CertificateService
    xds_auth: xdsauth.XdsAuthenticator
    ca_source: str  # "cacerts" or "istio-ca-secret"

    def serving_cert(self, dns_names: Iterable[str], ip_addresses: Iterable[str] = ()) -> tuple[bytes, bytes]:
        """(PEM chain, PEM key) of the control plane's TLS cert, signed by the mesh CA."""
        chain, key = self.ca.serving_cert(dns_names, ip_addresses)
        return "".join(chain).encode(), key

    def serving_credentials(
        self, dns_names: Iterable[str], ip_addresses: Iterable[str] = ()
    ) -> grpc.ServerCredentials:
        """TLS credentials for 15012. grpcio cannot "verify the client cert if given" (Go's
        VerifyClientCertIfGiven), so clients authenticate with tokens; client-cert callers work
        only on a server built with require_client_auth."""
        chain, key = self.serving_cert(dns_names, ip_addresses)
        return grpc.ssl_server_credentials([(key, chain)])


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
) -> SecurityPlane:
    """Load (or create) the CA from the primary and wire the authenticators and services."""
    store = castore.CaStore(primary_client, namespace, org=trust_domain)
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
    service = certservice.CertificateService(mesh, chain, metrics.CaMetrics(registry))
    log.info("mesh CA ready %s", kv(cluster=cluster_id, namespace=namespace, source=store.source))
    return SecurityPlane(
        ca=mesh,
        chain=chain,
        cert_service=service,
        xds_auth=xdsauth.XdsAuthenticator(chain, identity_check=xds_identity_check),
        ca_source=store.source,
    )
