"""The authenticator chain: bearer token + clusterid → TokenReview on that cluster, client certs."""

from __future__ import annotations

import pytest

from meshplane.model.ids import ClusterId
from meshplane.security import authenticate, ca, errors
from tests.support import fakereview, secpki

C1, C2, C3 = ClusterId("cluster1"), ClusterId("cluster2"), ClusterId("cluster3")


def _req(
    token: str | None = None, cluster: str | None = None, cert: bytes | None = None
) -> authenticate.AuthRequest:
    md: dict[str, tuple[str, ...]] = {}
    if token is not None:
        md["authorization"] = (f"Bearer {token}",)
    if cluster is not None:
        md["clusterid"] = (cluster,)
    return authenticate.AuthRequest(md, cert, "ipv4:127.0.0.1:1")


@pytest.fixture
def setup() -> tuple[
    authenticate.KubeJwtAuthenticator,
    fakereview.FakeReviewer,
    fakereview.FakeReviewer,
    fakereview.ReviewerRegistry,
]:
    local, remote = fakereview.FakeReviewer(), fakereview.FakeReviewer()
    reg = fakereview.ReviewerRegistry()
    auth = authenticate.KubeJwtAuthenticator(C1, local, reg, local_aliases=[ClusterId("Kubernetes")])
    return auth, local, remote, reg


async def test_local_cluster_token(setup) -> None:  # type: ignore[no-untyped-def]
    auth, local, _, _ = setup
    token = local.issue("sample", "sleep")
    for cid in (None, "", "cluster1", "Kubernetes"):
        caller = await auth.authenticate(_req(token, cid))
        assert caller is not None
        assert caller.identities == ("spiffe://cluster.local/ns/sample/sa/sleep",)
        assert (caller.namespace, caller.service_account, caller.cluster_id) == ("sample", "sleep", C1)
        assert caller.pod_name == "pod-1"
    assert local.calls[-1] == (token, ("istio-ca",))


async def test_remote_cluster_needs_its_reviewer(setup) -> None:  # type: ignore[no-untyped-def]
    auth, _, remote, reg = setup
    token = remote.issue("sample", "helloworld")
    with pytest.raises(errors.AuthenticationError) as ei:
        await auth.authenticate(_req(token, "cluster2"))
    assert str(ei.value) == (
        'client claims to be in cluster "cluster2", but we only know about local cluster "cluster1" '
        "and remote clusters []"
    )
    reg.set(C2, remote)
    reg.set(C3, fakereview.FakeReviewer())
    caller = await auth.authenticate(_req(token, "cluster2"))
    assert caller is not None and caller.cluster_id == C2
    with pytest.raises(errors.AuthenticationError, match=r"remote clusters \[cluster2 cluster3\]"):
        await auth.authenticate(_req(token, "cluster9"))
    reg.remove(C2)
    with pytest.raises(errors.AuthenticationError, match="client claims to be in cluster"):
        await auth.authenticate(_req(token, "cluster2"))


async def test_token_presented_to_the_wrong_cluster(setup) -> None:  # type: ignore[no-untyped-def]
    auth, local, remote, reg = setup
    reg.set(C2, remote)
    token = local.issue("sample", "sleep")
    with pytest.raises(errors.AuthenticationError, match=r"from cluster .cluster2.: .*invalid bearer token"):
        await auth.authenticate(_req(token, "cluster2"))
    assert remote.calls and not local.calls


async def test_wrong_audience(setup) -> None:  # type: ignore[no-untyped-def]
    auth, local, _, _ = setup
    token = local.issue("sample", "sleep", audiences=("api",))
    with pytest.raises(errors.AuthenticationError, match="audiences are invalid"):
        await auth.authenticate(_req(token))


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (authenticate.ReviewResult(False, error="boom"), "returns an error: boom"),
        (authenticate.ReviewResult(False), "not authenticated"),
        (
            authenticate.ReviewResult(
                True, "system:serviceaccount:a:b", audiences=("api",), groups=("system:serviceaccounts",)
            ),
            "not valid for audience istio-ca",
        ),
        (
            authenticate.ReviewResult(True, "alice", audiences=("istio-ca",), groups=("devs",)),
            "not a service account",
        ),
        (
            authenticate.ReviewResult(
                True, "system:serviceaccount:a", audiences=("istio-ca",), groups=("system:serviceaccounts",)
            ),
            "invalid username",
        ),
        (
            authenticate.ReviewResult(
                True, "x:y:a:b", audiences=("istio-ca",), groups=("system:serviceaccounts",)
            ),
            "invalid username",
        ),
    ],
)
def test_check_review_reasons(result: authenticate.ReviewResult, reason: str) -> None:
    with pytest.raises(errors.AuthenticationError, match=reason):
        authenticate.check_review(result, ("istio-ca",))


@pytest.mark.parametrize(
    ("md", "reason"),
    [
        ({}, "no bearer token"),
        ({"authorization": ("Basic abc",)}, "not of the form"),
        ({"authorization": ("Bearer ",)}, "empty bearer token"),
        ({"authorization": ("Bearer a.b.c", "Bearer d.e.f")}, "more than one authorization"),
        ({"authorization": ("Bearer not-a-jwt",)}, "not a JWT"),
        ({"authorization": ("Bearer a.b.c\x00",)}, "not a JWT"),
        ({"authorization": ("Bearer " + "a." * 9000 + "b",)}, "longer than"),
    ],
)
def test_bearer_token_rejections(md: dict[str, tuple[str, ...]], reason: str) -> None:
    with pytest.raises(errors.AuthenticationError, match=reason):
        authenticate.bearer_token(authenticate.AuthRequest(md))


def test_multiple_cluster_ids_rejected() -> None:
    with pytest.raises(errors.AuthenticationError, match="more than one clusterid"):
        authenticate.claimed_cluster(authenticate.AuthRequest({"clusterid": ("a", "b")}))


async def test_chain_first_success_and_joined_reasons_without_token(setup) -> None:  # type: ignore[no-untyped-def]
    auth, local, _, _ = setup
    mesh = ca.MeshCA(ca.self_signed_root())
    chain = authenticate.Chain([authenticate.ClientCertAuthenticator(mesh), auth])
    token = local.issue("sample", "sleep")
    caller = await chain.authenticate(_req(token))
    assert caller.source == authenticate.SOURCE_ID_TOKEN
    bad = fakereview.jwt_shaped()
    with pytest.raises(errors.AuthenticationError) as ei:
        await chain.authenticate(_req(bad, "cluster1"))
    assert "KubeJWTAuthenticator: failed to validate the JWT" in str(ei.value)
    assert bad not in str(ei.value) and bad.split(".")[1] not in str(ei.value)
    with pytest.raises(errors.AuthenticationError, match="no bearer token"):
        await chain.authenticate(_req())


async def test_client_cert_authenticator() -> None:
    mesh = ca.MeshCA(ca.self_signed_root())
    other = ca.MeshCA(ca.self_signed_root())
    spiffe = "spiffe://cluster.local/ns/sample/sa/sleep"
    auth = authenticate.ClientCertAuthenticator(mesh)
    csr = ca.parse_csr(secpki.csr_pem([spiffe]))
    good = mesh.sign_workload(csr, [spiffe], mesh.default_ttl)[0].encode()
    caller = await auth.authenticate(_req(cert=good))
    assert caller is not None and caller.identities == (spiffe,) and caller.source == "ClientCertificate"
    assert await auth.authenticate(_req()) is None
    foreign = other.sign_workload(csr, [spiffe], other.default_ttl)[0].encode()
    with pytest.raises(errors.AuthenticationError, match="not issued by the mesh CA"):
        await auth.authenticate(_req(cert=foreign))
    with pytest.raises(errors.AuthenticationError, match="cannot be parsed"):
        await auth.authenticate(_req(cert=b"garbage"))
    # a plugged-in intermediate: the client cert chains through it
    data, _ = secpki.intermediate_cacerts(depth=2)
    inter = ca.MeshCA(ca.bundle_from_cacerts(data))
    leaf = inter.sign_workload(csr, [spiffe], inter.default_ttl)[0].encode()
    assert await authenticate.ClientCertAuthenticator(inter).authenticate(_req(cert=leaf)) is not None
