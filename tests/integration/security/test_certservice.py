"""CreateCertificate over TLS on a real grpc.aio server: issuance, every refusal, metrics, fuzzing.

The TokenReview side is an in-memory reviewer here; tests/integration/security/test_devcluster_*
run the same service against real dev clusters.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from meshplane.model.ids import ClusterId
from meshplane.security import authenticate, ca, caproto, certservice, metrics
from tests.support import fakereview, secpki

SLEEP = "spiffe://cluster.local/ns/sample/sa/sleep"
SERVER_NAME = "istiod.istio-system.svc"


@dataclass
class Env:
    port: int
    mesh: ca.MeshCA
    local: fakereview.FakeReviewer
    remotes: fakereview.ReviewerRegistry
    registry: CollectorRegistry
    channel: grpc.aio.Channel

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def call(
        self, csr: bytes | str, token: str | None = None, cluster: str | None = None, ttl: int = 0
    ) -> caproto.IstioCertificateResponse:
        md = []
        if token is not None:
            md.append(("authorization", f"Bearer {token}"))
        if cluster is not None:
            md.append(("clusterid", cluster))
        req = caproto.IstioCertificateRequest(
            csr=csr.decode() if isinstance(csr, bytes) else csr, validity_duration=ttl
        )
        return await caproto.CertificateStub(self.channel).CreateCertificate(req, metadata=md, timeout=10)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    mesh = ca.MeshCA(ca.self_signed_root(), max_ttl=dt.timedelta(days=2))
    local = fakereview.FakeReviewer()
    remotes = fakereview.ReviewerRegistry()
    chain = authenticate.Chain(
        [
            authenticate.ClientCertAuthenticator(mesh),
            authenticate.KubeJwtAuthenticator(ClusterId("cluster1"), local, remotes),
        ]
    )
    registry = CollectorRegistry()
    svc = certservice.CertificateService(mesh, chain, metrics.CaMetrics(registry))
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((svc.handler(),))
    cert_chain, key = mesh.serving_cert(ca.serving_dns_names("istio-system"))
    port = server.add_secure_port(
        "127.0.0.1:0", grpc.ssl_server_credentials([(key, "".join(cert_chain).encode())])
    )
    await server.start()
    channel = grpc.aio.secure_channel(
        f"127.0.0.1:{port}",
        grpc.ssl_channel_credentials(root_certificates=mesh.root_pem.encode()),
        options=[("grpc.ssl_target_name_override", SERVER_NAME)],
    )
    try:
        yield Env(port, mesh, local, remotes, registry, channel)
    finally:
        await channel.close()
        await server.stop(None)


async def _status(coro: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await coro  # type: ignore[misc]
    return ei.value


async def test_issues_chain_for_own_identity(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = env.local.issue("sample", "sleep")
    resp = await env.call(secpki.csr_pem([SLEEP]), token, "cluster1", ttl=3600)
    assert len(resp.cert_chain) == 2 and all(p.endswith("\n") for p in resp.cert_chain)
    assert resp.cert_chain[-1] == env.mesh.root_pem
    leaf = x509.load_pem_x509_certificate(resp.cert_chain[0].encode())
    verifier = (
        verification.PolicyBuilder().store(verification.Store([env.mesh.bundle.root])).build_client_verifier()
    )
    verified = verifier.verify(leaf, [])
    assert [g.value for g in verified.subjects or []] == [SLEEP]
    life = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert life == dt.timedelta(hours=1) + ca.CLOCK_SKEW
    # an empty SAN list is signed for the caller, as Istio does; default TTL 24h
    resp = await env.call(secpki.csr_pem(), token)
    leaf = x509.load_pem_x509_certificate(resp.cert_chain[0].encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [SLEEP]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(hours=24) + ca.CLOCK_SKEW
    assert env.metric("citadel_server_csr_count_total") == 2
    assert env.metric("citadel_server_success_cert_issuance_count_total") == 2
    assert token not in caplog.text and "issued workload certificate" in caplog.text


async def test_every_refusal_has_status_reason_and_metric(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = env.local.issue("sample", "sleep")
    cases: list[tuple[object, grpc.StatusCode, str, str]] = [
        (
            env.call(secpki.csr_pem([SLEEP])),
            grpc.StatusCode.UNAUTHENTICATED,
            "no bearer token",
            "authentication",
        ),
        (
            env.call(secpki.csr_pem([SLEEP]), token, "cluster2"),
            grpc.StatusCode.UNAUTHENTICATED,
            'client claims to be in cluster "cluster2", but we only know about local cluster "cluster1" '
            "and remote clusters []",
            "authentication",
        ),
        (
            env.call(secpki.csr_pem([SLEEP]), fakereview.jwt_shaped()),
            grpc.StatusCode.UNAUTHENTICATED,
            "invalid bearer token",
            "authentication",
        ),
        (
            env.call(secpki.csr_pem([SLEEP]), env.local.issue("sample", "sleep", ["api"])),
            grpc.StatusCode.UNAUTHENTICATED,
            "audiences are invalid",
            "authentication",
        ),
        (
            env.call(secpki.csr_pem(["spiffe://cluster.local/ns/sample/sa/admin"]), token),
            grpc.StatusCode.PERMISSION_DENIED,
            "the CSR requests identities ['spiffe://cluster.local/ns/sample/sa/admin'] but the caller is",
            "permission_denied",
        ),
        (
            env.call(secpki.csr_pem([SLEEP, "spiffe://cluster.local/ns/other/sa/x"]), token),
            grpc.StatusCode.PERMISSION_DENIED,
            "but the caller is ['spiffe://cluster.local/ns/sample/sa/sleep']",
            "permission_denied",
        ),
        (env.call("not a csr", token), grpc.StatusCode.INVALID_ARGUMENT, "CSR parsing error", "csr_parsing"),
        (
            env.call(secpki.csr_pem([SLEEP]), token, ttl=3 * 86400),
            grpc.StatusCode.INVALID_ARGUMENT,
            "greater than the max allowed TTL",
            "sign_error",
        ),
        (
            env.call("x" * (certservice.MAX_REQUEST_BYTES + 1), token),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"exceeds the limit of {certservice.MAX_REQUEST_BYTES} bytes",
            "too_large",
        ),
    ]
    for coro, code, text, reason in cases:
        before = env.metric("meshplane_ca_request_errors_total", reason=reason)
        err = await _status(coro)
        assert err.code() == code, (text, err)
        assert text in (err.details() or ""), (text, err.details())
        assert env.metric("meshplane_ca_request_errors_total", reason=reason) == before + 1
    assert env.metric("citadel_server_authentication_failure_count_total") == 4
    assert env.metric("citadel_server_id_extraction_err_count_total") == 2
    assert env.metric("citadel_server_csr_parsing_err_count_total") == 1
    assert env.metric("citadel_server_csr_sign_err_count_total", error="TTL_ERROR") == 1
    assert env.metric("citadel_server_success_cert_issuance_count_total") == 0
    assert token not in caplog.text
    # still serving
    assert len((await env.call(secpki.csr_pem([SLEEP]), token)).cert_chain) == 2


async def test_garbage_bytes_and_impersonation(env: Env) -> None:
    raw = env.channel.unary_unary(caproto.METHOD_PATH)
    err = await _status(raw(b"\xff\xff\xff\xff garbage", timeout=10))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed request" in (err.details() or "")
    token = env.local.issue("sample", "sleep")
    req = caproto.IstioCertificateRequest(csr=secpki.csr_pem([SLEEP]).decode())
    req.metadata.update({caproto.META_IMPERSONATED_IDENTITY: "spiffe://cluster.local/ns/kube-system/sa/x"})
    err = await _status(
        caproto.CertificateStub(env.channel).CreateCertificate(
            req, metadata=[("authorization", f"Bearer {token}")], timeout=10
        )
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "impersonation" in (err.details() or "")


async def test_remote_cluster_accepted_once_its_reviewer_is_registered(env: Env) -> None:
    remote = fakereview.FakeReviewer()
    token = remote.issue("sample", "helloworld")
    csr = secpki.csr_pem(["spiffe://cluster.local/ns/sample/sa/helloworld"])
    err = await _status(env.call(csr, token, "cluster2"))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    env.remotes.set(ClusterId("cluster2"), remote)
    assert len((await env.call(csr, token, "cluster2")).cert_chain) == 2
    # the same token claimed for the primary goes to the primary's reviewer, which does not know it
    err = await _status(env.call(csr, token, "cluster1"))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_client_certificate_authenticates(env: Env) -> None:
    """A workload presenting its mesh cert (mTLS) is authenticated without a token."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = secpki.csr_pem([SLEEP], key=key)
    chain = env.mesh.sign_workload(ca.parse_csr(csr), [SLEEP], dt.timedelta(hours=1))
    key_pem = ca.key_pem(key)
    # the server must ask for client certs for this path; build one that does
    svc = certservice.CertificateService(
        env.mesh,
        authenticate.Chain([authenticate.ClientCertAuthenticator(env.mesh)]),
        metrics.CaMetrics(CollectorRegistry()),
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((svc.handler(),))
    sc, sk = env.mesh.serving_cert([SERVER_NAME])
    port = server.add_secure_port(
        "127.0.0.1:0",
        grpc.ssl_server_credentials(
            [(sk, "".join(sc).encode())],
            root_certificates=env.mesh.root_pem.encode(),
            require_client_auth=True,
        ),
    )
    await server.start()
    try:
        async with grpc.aio.secure_channel(
            f"127.0.0.1:{port}",
            grpc.ssl_channel_credentials(env.mesh.root_pem.encode(), key_pem, "".join(chain).encode()),
            options=[("grpc.ssl_target_name_override", SERVER_NAME)],
        ) as ch:
            req = caproto.IstioCertificateRequest(csr=secpki.csr_pem([SLEEP]).decode())
            resp = await caproto.CertificateStub(ch).CreateCertificate(req, timeout=10)
            assert len(resp.cert_chain) == 2
    finally:
        await server.stop(None)


_printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=3000),
        st.builds(
            lambda csr, ttl: caproto.IstioCertificateRequest(
                csr=csr, validity_duration=ttl
            ).SerializeToString(),
            st.one_of(_printable, st.sampled_from([secpki.csr_pem([SLEEP]).decode()])),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
        ),
    ),
    authz=st.one_of(st.none(), _printable, _printable.map(lambda s: "Bearer " + s)),
    cluster=st.one_of(st.none(), _printable),
)
async def test_fuzz_never_crashes_never_issues(
    env: Env, body: bytes, authz: str | None, cluster: str | None
) -> None:
    md = [(k, v) for k, v in (("authorization", authz), ("clusterid", cluster)) if v is not None]
    raw = env.channel.unary_unary(caproto.METHOD_PATH)
    err = await _status(raw(body, metadata=md, timeout=10))
    assert err.code() in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ), err
    assert err.details()
    assert env.metric("citadel_server_success_cert_issuance_count_total") == 0
    assert env.metric("meshplane_ca_request_errors_total", reason="internal") == 0
