"""CaRotator against a dev cluster: the self-signed `istio-ca-secret` and a plugged-in `cacerts`
replacing it are reloaded and published with the replaced roots; expired or missing material is
refused with the reason and the CA in use keeps signing."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.x509 import verification
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret
from prometheus_client import CollectorRegistry

from meshplane.security import authenticate, ca, carotation, castore, errors, metrics, rootrenew
from tests.support import fakeclock, secpki
from tests.support.loopcluster import Cluster, unique
from tests.support.wait import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Env:
    def __init__(self, c: Cluster, ns: str, mesh: ca.MeshCA, rotator: carotation.CaRotator) -> None:
        self.c, self.ns, self.mesh, self.rotator = c, ns, mesh, rotator
        self.published: list[str] = []

    async def put(self, name: str, data: dict[str, bytes]) -> None:
        encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
        # the operator replaces a Secret the control plane wrote: a server-side apply of fields
        # another manager owns needs force, as against kube-apiserver (--force-conflicts)
        await self.c.admin.apply(
            Secret(metadata=ObjectMeta(name=name, namespace=self.ns), data=encoded),
            field_manager="test",
            force=True,
        )


@pytest_asyncio.fixture(loop_scope="module")
async def env(clusters: tuple[Cluster, Cluster]) -> AsyncIterator[Env]:
    c1, _ = clusters
    ns = unique("carot")
    await c1.namespace(ns)
    store = castore.CaStore(c1.admin, ns)
    mesh = ca.MeshCA(await store.load())  # creates istio-ca-secret (root A)
    registry = CollectorRegistry()
    rotator = carotation.CaRotator(
        c1.admin, store, mesh, metrics.CaMetrics(registry), cluster_id="cluster1", transition=2.0
    )
    e = Env(c1, ns, mesh, rotator)

    async def listener(bundle: str) -> None:
        e.published.append(bundle)

    rotator.subscribe(listener)
    task = asyncio.create_task(rotator.run())
    try:
        yield e
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _self_signed_data(bundle: ca.KeyCertBundle) -> dict[str, bytes]:
    return {ca.SELF_SIGNED_CERT: bundle.root_pem.encode(), ca.SELF_SIGNED_KEY: ca.key_pem(bundle.signing_key)}


def _client_cert(mesh: ca.MeshCA) -> authenticate.AuthRequest:
    identity = "spiffe://cluster.local/ns/x/sa/y"
    chain = mesh.sign_workload(
        ca.parse_csr(secpki.csr_pem(uris=[identity])), [identity], dt.timedelta(hours=1)
    )
    return authenticate.AuthRequest(metadata={}, peer_cert_pem=chain[0].encode())


async def test_self_signed_then_plugged_in_rotation_keeps_replaced_roots_for_the_transition(env: Env) -> None:
    root_a = env.mesh.root_pem
    by_a = _client_cert(env.mesh)  # a workload's certificate from CA A, used as a client cert
    client_certs = authenticate.ClientCertAuthenticator(env.mesh)
    root_b = ca.self_signed_root()
    await env.put(castore.SELF_SIGNED_SECRET, _self_signed_data(root_b))
    await wait_for(lambda: env.published[-1:] == [root_b.root_pem + root_a], 10, what="B then A published")
    assert env.mesh.root_pem == root_b.root_pem
    assert await client_certs.authenticate(by_a) is not None, "CA A's certificates stay valid for now"
    # cacerts appears: it wins over istio-ca-secret; both replaced roots stay trusted for now
    data, root_c = secpki.intermediate_cacerts()
    await env.put(castore.CACERTS_SECRET, data)
    await wait_for(lambda: env.published[-1].startswith(root_c.root_pem), 10, what="C published")
    assert env.published[-1] == root_c.root_pem + root_a + root_b.root_pem
    leaf = secpki.csr_pem(uris=["spiffe://cluster.local/ns/x/sa/y"])
    chain = env.mesh.sign_workload(
        ca.parse_csr(leaf), ["spiffe://cluster.local/ns/x/sa/y"], dt.timedelta(hours=1)
    )
    assert chain[-1] == root_c.root_pem
    # after the transition only C is trusted, and CA A's client certificates are refused
    await wait_for(lambda: env.published[-1] == root_c.root_pem, 10, what="replaced roots dropped")
    with pytest.raises(errors.AuthenticationError, match="not issued by the mesh CA"):
        await client_certs.authenticate(by_a)
    assert await client_certs.authenticate(_client_cert(env.mesh)) is not None


async def test_expired_material_is_refused_and_nothing_changes(env: Env) -> None:
    before = env.mesh.root_pem
    past = fakeclock.FakeClock(start=dt.datetime(2001, 1, 1, tzinfo=dt.UTC).timestamp())
    expired = ca.self_signed_root(ttl=dt.timedelta(days=1), clock=past)
    await env.put(castore.SELF_SIGNED_SECRET, _self_signed_data(expired))
    await wait_for(lambda: "expired" in env.rotator.last_error, 10, what="expired root refused")
    assert "istio-ca-secret" in env.rotator.last_error
    assert env.mesh.root_pem == before and env.published == []
    # deleting the Secret leaves nothing to load: refused too, the CA in use keeps signing
    await env.c.admin.delete(Secret, castore.SELF_SIGNED_SECRET, namespace=env.ns)
    await wait_for(lambda: "neither" in env.rotator.last_error, 10, what="missing CA refused")
    assert env.mesh.root_pem == before and env.published == []


async def test_self_signed_root_near_expiry_is_renewed_for_the_same_key(
    clusters: tuple[Cluster, Cluster],
) -> None:
    c1, _ = clusters
    ns = unique("renew")
    await c1.namespace(ns)
    # a root with a tenth of its life left
    now = dt.datetime.now(dt.UTC)
    aged = ca.self_signed_root(
        ttl=dt.timedelta(days=10), clock=fakeclock.FakeClock(start=(now - dt.timedelta(days=9)).timestamp())
    )
    await c1.admin.create(
        Secret(
            metadata=ObjectMeta(name=castore.SELF_SIGNED_SECRET, namespace=ns),
            type=castore.SELF_SIGNED_TYPE,
            data={k: base64.b64encode(v).decode() for k, v in _self_signed_data(aged).items()},
        )
    )
    store = castore.CaStore(c1.admin, ns)
    mesh = ca.MeshCA(await store.load())
    identity = "spiffe://cluster.local/ns/x/sa/y"
    old_leaf = mesh.sign_workload(
        ca.parse_csr(secpki.csr_pem(uris=[identity])), [identity], dt.timedelta(hours=1)
    )[0]
    rotator = carotation.CaRotator(
        c1.admin, store, mesh, metrics.CaMetrics(CollectorRegistry()), cluster_id="cluster1", transition=60.0
    )
    published: list[str] = []

    async def listener(bundle: str) -> None:
        published.append(bundle)

    rotator.subscribe(listener)
    task = asyncio.create_task(rotator.run())
    try:
        # outside a 5 % grace period nothing is written; inside the default 20 % it is
        assert not await rootrenew.RootRenewer(
            store, cluster_id="cluster1", grace_percent=5, jitter=False
        ).check()
        renewer = rootrenew.RootRenewer(store, cluster_id="cluster1", jitter=False)
        assert await renewer.check()
        await wait_for(lambda: len(published) == 1, 10, what="renewed root published")
        new_root = mesh.bundle.root
        assert published[0] == ca.pem(new_root) + aged.root_pem
        assert new_root.public_key() == aged.root.public_key() and new_root != aged.root
        assert new_root.not_valid_after_utc > now + dt.timedelta(days=3000)
        # certificates the old root signed chain to the new root alone (same key and name)
        verifier = verification.PolicyBuilder().store(verification.Store([new_root])).build_client_verifier()
        verifier.verify(x509.load_pem_x509_certificate(old_leaf.encode()), [])
        # renewed: the next check (any replica) finds nothing to do
        assert not await renewer.check()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
