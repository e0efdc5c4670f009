"""The certificate service against two real dev clusters: TokenReview on the claimed cluster.

Tokens come from the clusters' own TokenRequest API; the remote cluster is reached only with
reader credentials (as a remote secret gives them), registered in the reviewer registry.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import lightkube
import pytest
import pytest_asyncio
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lightkube.resources.core_v1 import ServiceAccount
from prometheus_client import CollectorRegistry

from meshplane.devcluster.auth import tokens
from meshplane.model.ids import ClusterId
from meshplane.security import authenticate, caproto, plane, tokenreview
from tests.support import fakereview, secpki
from tests.support.loopcluster import Cluster, unique

pytestmark = pytest.mark.asyncio(loop_scope="module")

C2 = ClusterId("cluster2")
SERVER_NAME = "istiod.istio-system.svc"


def spiffe(ns: str, sa: str) -> str:
    return f"spiffe://cluster.local/ns/{ns}/sa/{sa}"


@dataclass
class Env:
    c1: Cluster
    c2: Cluster
    plane: plane.SecurityPlane
    remotes: fakereview.ReviewerRegistry
    registry: CollectorRegistry
    channel: grpc.aio.Channel
    fuzz_token: str = ""
    fuzz_issued_before: float = 0.0

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def call(self, csr: bytes | str, token: str | None, cluster: str | None) -> list[str]:
        md = []
        if token is not None:
            md.append(("authorization", f"Bearer {token}"))
        if cluster is not None:
            md.append(("clusterid", cluster))
        req = caproto.IstioCertificateRequest(csr=csr.decode() if isinstance(csr, bytes) else csr)
        resp = await caproto.CertificateStub(self.channel).CreateCertificate(req, metadata=md, timeout=15)
        return list(resp.cert_chain)

    async def refused(self, csr: bytes | str, token: str | None, cluster: str | None) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as ei:
            await self.call(csr, token, cluster)
        return ei.value


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(clusters: tuple[Cluster, Cluster]) -> AsyncIterator[Env]:
    c1, c2 = clusters
    remotes = fakereview.ReviewerRegistry()
    registry = CollectorRegistry()
    sec = await plane.build(c1.admin, ClusterId("cluster1"), "istio-system", remotes, registry)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((sec.cert_service.handler(),))
    port = server.add_secure_port("127.0.0.1:0", sec.serving_credentials([SERVER_NAME]))
    await server.start()
    channel = grpc.aio.secure_channel(
        f"127.0.0.1:{port}",
        grpc.ssl_channel_credentials(root_certificates=sec.ca.root_pem.encode()),
        options=[("grpc.ssl_target_name_override", SERVER_NAME)],
    )
    try:
        yield Env(c1, c2, sec, remotes, registry, channel)
    finally:
        await channel.close()
        await server.stop(None)


def _leaf_uris(chain: list[str]) -> list[str]:
    leaf = x509.load_pem_x509_certificate(chain[0].encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


async def test_primary_workload_gets_a_cert(env: Env) -> None:
    token = await env.c1.token("sample", "sleep")
    chain = await env.call(secpki.csr_pem([spiffe("sample", "sleep")]), token, "cluster1")
    assert len(chain) == 2 and chain[-1] == env.plane.ca.root_pem
    assert _leaf_uris(chain) == [spiffe("sample", "sleep")]


async def test_remote_rejected_until_its_reviewer_is_registered(env: Env) -> None:
    token = await env.c2.token("sample", "helloworld")
    csr = secpki.csr_pem([spiffe("sample", "helloworld")])
    err = await env.refused(csr, token, "cluster2")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert 'client claims to be in cluster "cluster2", but we only know about local cluster "cluster1"' in (
        err.details() or ""
    )
    env.remotes.set(C2, tokenreview.KubeTokenReviewer(await env.c2.reader_client(), C2))
    try:
        chain = await env.call(csr, token, "cluster2")
        assert _leaf_uris(chain) == [spiffe("sample", "helloworld")]
        # a cluster1 token claimed as cluster2 is reviewed by cluster2, which did not sign it
        token1 = await env.c1.token("sample", "helloworld")
        err = await env.refused(csr, token1, "cluster2")
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "failed to validate the JWT from cluster 'cluster2'" in (err.details() or "")
        # and the cluster2 token claimed as cluster1 is refused by cluster1
        err = await env.refused(csr, token, "cluster1")
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        env.remotes.remove(C2)
    err = await env.refused(csr, token, "cluster2")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_remote_reviewers_over_a_client_lookup(env: Env) -> None:
    """The composition root's adapter: reviewers built from the multicluster controller's clients."""
    clients: dict[ClusterId, lightkube.AsyncClient] = {}
    lookup = tokenreview.ClientReviewers(clients.get, lambda: list(clients))
    auth = authenticate.KubeJwtAuthenticator(
        ClusterId("cluster1"), tokenreview.KubeTokenReviewer(env.c1.admin, ClusterId("cluster1")), lookup
    )
    token = await env.c2.token("sample", "sleep")
    req = authenticate.AuthRequest({"authorization": (f"Bearer {token}",), "clusterid": ("cluster2",)})
    with pytest.raises(Exception, match="remote clusters"):
        await auth.authenticate(req)
    clients[C2] = await env.c2.reader_client()
    caller = await auth.authenticate(req)
    assert (
        caller is not None and caller.identities == (spiffe("sample", "sleep"),) and caller.cluster_id == C2
    )


async def test_expired_wrong_audience_deleted_sa_and_foreign_identity(env: Env) -> None:
    c1 = env.c1
    csr = secpki.csr_pem([spiffe("sample", "sleep")])
    before = env.metric("citadel_server_authentication_failure_count_total")
    # expired: signed with cluster1's own key, exp in the past
    key = c1.dev.security.signing_key
    sa = (await c1.admin.get(ServiceAccount, "sleep", namespace="sample")).to_dict()
    expired = key.sign(tokens.bound_claims(sa, ["istio-ca"], 600, time.time() - 3600))
    err = await env.refused(csr, expired, "cluster1")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in (err.details() or "").lower()
    # the same forged way but valid: proves the expired case failed only for its exp
    fresh = key.sign(tokens.bound_claims(sa, ["istio-ca"], 600, time.time()))
    assert len(await env.call(csr, fresh, "cluster1")) == 2
    # audience api
    api_token = await c1.token("sample", "sleep", audiences=["api"])
    err = await env.refused(csr, api_token, "cluster1")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    # forged: signed by another key
    forged = tokens.generate_key().sign(tokens.bound_claims(sa, ["istio-ca"], 600, time.time()))
    err = await env.refused(csr, forged, "cluster1")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    # deleted ServiceAccount
    gone = unique("gone")
    await c1.service_account("sample", gone)
    gone_token = await c1.token("sample", gone)
    gone_csr = secpki.csr_pem([spiffe("sample", gone)])
    assert len(await env.call(gone_csr, gone_token, "cluster1")) == 2
    await c1.admin.delete(ServiceAccount, gone, namespace="sample")
    err = await env.refused(gone_csr, gone_token, "cluster1")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert env.metric("citadel_server_authentication_failure_count_total") == before + 4
    # CSR naming another service account
    token = await c1.token("sample", "sleep")
    ids_before = env.metric("citadel_server_id_extraction_err_count_total")
    err = await env.refused(secpki.csr_pem([spiffe("sample", "helloworld")]), token, "cluster1")
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "spiffe://cluster.local/ns/sample/sa/helloworld" in (err.details() or "")
    assert env.metric("citadel_server_id_extraction_err_count_total") == ids_before + 1


_printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=100)
_CSR_OTHER = secpki.csr_pem([spiffe("sample", "helloworld")])


def _flip(data: bytes, i: int) -> bytes:
    if not data:
        return data
    i %= len(data)
    return data[:i] + bytes([data[i] ^ 0x41]) + data[i + 1 :]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    csr=st.one_of(
        st.binary(max_size=2000),
        st.integers(min_value=0, max_value=10_000).map(lambda i: _flip(_CSR_OTHER, i)),
        st.just(_CSR_OTHER),
    ),
    cluster=st.one_of(st.none(), st.sampled_from(["cluster1", "cluster2", "", "Kubernetes"]), _printable),
    token_kind=st.sampled_from(["valid", "none", "garbage"]),
    garbage=_printable,
)
async def test_fuzz_csr_and_metadata_never_issue(
    env: Env, csr: bytes, cluster: str | None, token_kind: str, garbage: str
) -> None:
    if not env.fuzz_token:
        env.fuzz_token = await env.c1.token("sample", "sleep")
        env.fuzz_issued_before = env.metric("citadel_server_success_cert_issuance_count_total")
    token = {"valid": env.fuzz_token, "none": None, "garbage": garbage}[token_kind]
    md = [
        (k, v)
        for k, v in (("authorization", None if token is None else f"Bearer {token}"), ("clusterid", cluster))
        if v is not None
    ]
    req = caproto.IstioCertificateRequest(csr=csr.decode("latin-1")).SerializeToString()
    raw = env.channel.unary_unary(caproto.METHOD_PATH)
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await raw(req if token_kind != "none" else csr, metadata=md, timeout=15)
    assert ei.value.code() in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    ), ei.value
    assert env.metric("citadel_server_success_cert_issuance_count_total") == env.fuzz_issued_before
    assert env.metric("meshplane_ca_request_errors_total", reason="internal") == 0


async def test_still_serving_after_fuzz(env: Env) -> None:
    token = await env.c1.token("sample", "sleep")
    assert len(await env.call(secpki.csr_pem([spiffe("sample", "sleep")]), token, "cluster1")) == 2
