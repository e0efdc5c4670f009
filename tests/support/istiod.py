"""An istiod-like control plane in-process, as on 15012: ADS (with XDS_AUTH) and the CA service on
one TLS gRPC listener with a serving cert for istiod.istio-system.svc, fed by a MemorySource.

Stop and start again on the same port to simulate the discovery going down and coming back.
Tokens come from the in-memory reviewer (tests/support/fakereview.py); everything else is the
project's real code (generators, ADS server, push queue, CA, authenticators).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from prometheus_client import CollectorRegistry

from meshplane.model import proxy as proxy_mod
from meshplane.model.ids import ClusterId
from meshplane.push import context, metrics, queue
from meshplane.security import authenticate, ca, certservice, xdsauth
from meshplane.security import errors as sec_errors
from meshplane.security import metrics as ca_metrics
from meshplane.server import ads, grpcserver
from meshplane.server import errors as server_errors
from meshplane.xds import generator
from tests.support import fakereview, memsource


@dataclass
class Istiod:
    source: memsource.MemorySource
    cluster_id: str = "cluster1"
    host: str = "127.0.0.1"
    port: int = 0
    mesh: ca.MeshCA = field(
        default_factory=lambda: ca.MeshCA(ca.self_signed_root(), max_ttl=dt.timedelta(days=2))
    )
    # the local cluster's TokenReview (in-memory by default; a KubeTokenReviewer for a dev cluster)
    reviewer: fakereview.FakeReviewer = field(default_factory=fakereview.FakeReviewer)
    # remote clusters' TokenReview, as the remote secrets would register them
    remotes: fakereview.ReviewerRegistry = field(default_factory=fakereview.ReviewerRegistry)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    ads: ads.AdsServer | None = None
    _queue: queue.PushQueue | None = None
    _grpc: grpcserver.GrpcServer | None = None
    _ca_metrics: ca_metrics.CaMetrics | None = None

    def _chain(self) -> authenticate.Chain:
        return authenticate.Chain(
            [
                authenticate.ClientCertAuthenticator(self.mesh),
                authenticate.KubeJwtAuthenticator(ClusterId(self.cluster_id), self.reviewer, self.remotes),
            ]
        )

    async def start(self) -> None:
        chain = self._chain()
        xds_auth = xdsauth.XdsAuthenticator(chain)

        async def auth(ctx: grpc.aio.ServicerContext, proxy: proxy_mod.Proxy) -> None:  # type: ignore[type-arg]
            try:
                await xds_auth.authorize_stream(ctx, proxy)
            except sec_errors.SecurityError as e:
                raise server_errors.StreamRejected(xdsauth.status_code(e), str(e)) from e

        if self._ca_metrics is None:
            self._ca_metrics = ca_metrics.CaMetrics(self.registry)
        cert_service = certservice.CertificateService(self.mesh, chain, self._ca_metrics)
        m = metrics.Metrics()
        server = ads.AdsServer(
            generator.Generator(), metrics=m, cluster_id=ClusterId(self.cluster_id), auth=auth
        )
        pq = queue.PushQueue(self.source, server, metrics=m)
        chain_pem, key = self.mesh.serving_cert(ca.serving_dns_names("istio-system"))
        creds = grpc.ssl_server_credentials([(key, "".join(chain_pem).encode())])
        g = grpcserver.GrpcServer(server, [grpcserver.Listener(f"{self.host}:{self.port}", creds)])
        g.add_service(lambda s: s.add_generic_rpc_handlers((cert_service.handler(),)))
        (self.port,) = await g.start()
        await pq.start()
        self.ads, self._queue, self._grpc = server, pq, g

    async def push(self, reason: str = "test") -> None:
        assert self._queue is not None
        await self._queue.push_now(context.PushRequest(full=True, reasons=frozenset({reason})))

    async def stop(self) -> None:
        if self._queue is not None:
            await self._queue.stop()
        if self._grpc is not None:
            await self._grpc.stop(grace=0.1)
        self.ads, self._queue, self._grpc = None, None, None

    @property
    def address(self) -> str:
        return f"istiod.istio-system.svc:{self.port}"

    def issued(self) -> float:
        return self.registry.get_sample_value("citadel_server_success_cert_issuance_count_total") or 0.0


@contextlib.asynccontextmanager
async def running(source: memsource.MemorySource, **settings: Any) -> AsyncIterator[Istiod]:
    """An Istiod on `source`, started, and stopped on exit."""
    cp = Istiod(source, **settings)
    await cp.start()
    try:
        yield cp
    finally:
        await cp.stop()
