"""D's certificate service on a real TLS grpc.aio server, for agent tests without a dev cluster.

The authenticator chain is the real one; only the TokenReview answer comes from the in-memory
reviewer (tests/support/fakereview.py). Later agent tests use real dev-cluster tokens.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import grpc
from prometheus_client import CollectorRegistry

from meshplane.model.ids import ClusterId
from meshplane.security import authenticate, ca, certservice, metrics
from tests.support import fakereview


@dataclass
class CaServer:
    mesh: ca.MeshCA
    reviewer: fakereview.FakeReviewer
    cluster_id: str = "cluster1"
    host: str = "127.0.0.1"
    port: int = 0
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _server: grpc.aio.Server | None = None

    async def start(self) -> None:
        """Start (or restart on the same port) serving CreateCertificate over TLS."""
        chain = authenticate.Chain(
            [
                authenticate.ClientCertAuthenticator(self.mesh),
                authenticate.KubeJwtAuthenticator(
                    ClusterId(self.cluster_id), self.reviewer, fakereview.ReviewerRegistry()
                ),
            ]
        )
        svc = certservice.CertificateService(self.mesh, chain, metrics.CaMetrics(self.registry))
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((svc.handler(),))
        cert_chain, key = self.mesh.serving_cert(ca.serving_dns_names("istio-system"))
        creds = grpc.ssl_server_credentials([(key, "".join(cert_chain).encode())])
        self.port = server.add_secure_port(f"{self.host}:{self.port}", creds)
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)
            self._server = None

    def issued(self) -> float:
        return self.registry.get_sample_value("citadel_server_success_cert_issuance_count_total") or 0.0


def new_ca_server() -> CaServer:
    mesh = ca.MeshCA(ca.self_signed_root(), max_ttl=dt.timedelta(days=2))
    return CaServer(mesh=mesh, reviewer=fakereview.FakeReviewer())
