"""15012: one TLS listener serves ADS (with XDS_AUTH) and the CA, with the mesh-signed serving cert.

The ADS server and gRPC server are branch xds's (server/ads.py, server/grpcserver.py); the CA
service and the auth hook are security's. TokenReview answers come from the in-memory reviewer
(the dev-cluster path is covered by test_devcluster_ca.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from prometheus_client import CollectorRegistry

from meshplane.model.ids import ClusterId
from meshplane.security import authenticate, ca, caproto, certservice, metrics, xdsauth
from meshplane.server import grpcserver
from meshplane.xds import resources
from tests.support import fakereview, secpki, stack, xdsclient

SLEEP = "spiffe://cluster.local/ns/sample/sa/sleep"


@dataclass
class Env:
    port: int
    mesh: ca.MeshCA
    reviewer: fakereview.FakeReviewer
    registry: CollectorRegistry

    def creds(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.mesh.root_pem.encode())

    def client(self, token: str | None, sa: str = "sleep", ns: str = "sample") -> xdsclient.XdsClient:
        node = xdsclient.make_node(
            xdsclient.sidecar_node_id("sleep-1", ns, "127.0.1.5"),
            {"SERVICE_ACCOUNT": sa, "CLUSTER_ID": "cluster1"},
        )
        md = (("clusterid", "cluster1"),) + ((("authorization", f"Bearer {token}"),) if token else ())
        return xdsclient.XdsClient(f"127.0.0.1:{self.port}", node, credentials=self.creds(), metadata=md)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    mesh = ca.MeshCA(ca.self_signed_root())
    reviewer = fakereview.FakeReviewer()
    chain = authenticate.Chain(
        [
            authenticate.ClientCertAuthenticator(mesh),
            authenticate.KubeJwtAuthenticator(ClusterId("cluster1"), reviewer, fakereview.ReviewerRegistry()),
        ]
    )
    registry = CollectorRegistry()
    svc = certservice.CertificateService(mesh, chain, metrics.CaMetrics(registry))
    xds_auth = xdsauth.XdsAuthenticator(chain)
    st = await stack.start(auth=xds_auth.hook)
    cert, key = mesh.serving_cert(ca.serving_dns_names("istio-system"), ["127.0.0.1"])
    tls = grpcserver.GrpcServer(
        st.ads,
        [grpcserver.Listener("127.0.0.1:0", grpc.ssl_server_credentials([(key, "".join(cert).encode())]))],
        [lambda s: s.add_generic_rpc_handlers((svc.handler(),))],
    )
    (port,) = await tls.start()
    try:
        yield Env(port, mesh, reviewer, registry)
    finally:
        await tls.stop(grace=0.1)
        await st.stop()


async def test_ca_and_ads_on_one_tls_port(env: Env) -> None:
    token = env.reviewer.issue("sample", "sleep")
    async with grpc.aio.secure_channel(f"127.0.0.1:{env.port}", env.creds()) as ch:
        req = caproto.IstioCertificateRequest(csr=secpki.csr_pem([SLEEP]).decode())
        resp = await caproto.CertificateStub(ch).CreateCertificate(
            req, metadata=[("authorization", f"Bearer {token}"), ("clusterid", "cluster1")], timeout=10
        )
        assert len(resp.cert_chain) == 2
    client = env.client(token)
    await client.connect()
    try:
        await client.subscribe(resources.TYPE_CDS)
        await client.wait_responses(resources.TYPE_CDS, 1)
        assert client.error is None
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("token_for", "node_sa", "node_ns", "code", "text"),
    [
        (None, "sleep", "sample", grpc.StatusCode.UNAUTHENTICATED, "no bearer token"),
        ("garbage", "sleep", "sample", grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token"),
        (
            ("sample", "sleep"),
            "helloworld",
            "sample",
            grpc.StatusCode.PERMISSION_DENIED,
            "matched sample/helloworld",
        ),
        (("sample", "sleep"), "sleep", "other", grpc.StatusCode.PERMISSION_DENIED, "matched other/sleep"),
    ],
)
async def test_ads_stream_refused(
    env: Env, token_for: object, node_sa: str, node_ns: str, code: grpc.StatusCode, text: str
) -> None:
    if token_for is None:
        token = None
    elif token_for == "garbage":
        token = fakereview.jwt_shaped()
    else:
        ns, sa = token_for  # type: ignore[misc]
        token = env.reviewer.issue(ns, sa)
    client = env.client(token, sa=node_sa, ns=node_ns)
    await client.connect()
    try:
        await client.subscribe(resources.TYPE_CDS)
        err = await client.wait_closed()
        assert err is not None and err.code() == code, err
        assert text in (err.details() or "")
        assert not client.received
    finally:
        await client.close()


async def test_plaintext_client_cannot_use_the_tls_port(env: Env) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{env.port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as ei:
            await caproto.CertificateStub(ch).CreateCertificate(caproto.IstioCertificateRequest(), timeout=3)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
