"""CA key material in the primary: istio-ca-secret created once and reused, cacerts preferred."""

from __future__ import annotations

import asyncio
import base64

import lightkube
import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from meshplane.security import ca, castore, errors
from tests.support import secpki
from tests.support.loopcluster import Cluster, unique

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_root_created_once_and_reused_even_when_started_concurrently(
    clusters: tuple[Cluster, Cluster],
) -> None:
    c1, _ = clusters
    ns = unique("castore")
    await c1.namespace(ns)
    bundles = await asyncio.gather(*(castore.CaStore(c1.admin, ns).load() for _ in range(4)))
    roots = {b.root_pem for b in bundles}
    assert len(roots) == 1, "concurrent first starts must agree on one root"
    secret = await c1.admin.get(Secret, castore.SELF_SIGNED_SECRET, namespace=ns)
    assert secret.type == "istio.io/ca-root"
    assert set(secret.data) == {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "key.pem", "root-cert.pem"}
    assert base64.b64decode(secret.data["ca-cert.pem"]).decode() in roots
    # a restart reads the same root back
    again = castore.CaStore(c1.admin, ns)
    bundle = await again.load()
    assert bundle.root_pem in roots and again.source == castore.SELF_SIGNED_SECRET
    assert bundle.self_signed


async def test_cacerts_wins_and_bad_cacerts_is_an_error(clusters: tuple[Cluster, Cluster]) -> None:
    c1, _ = clusters
    ns = unique("cacerts")
    await c1.namespace(ns)
    data, root = secpki.intermediate_cacerts(depth=1)
    encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
    await c1.admin.create(Secret(metadata=ObjectMeta(name="cacerts", namespace=ns), data=encoded))
    store = castore.CaStore(c1.admin, ns)
    bundle = await store.load()
    assert store.source == castore.CACERTS_SECRET and bundle.root == root.root
    chain = ca.MeshCA(bundle).chain_pems()
    assert len(chain) == 2 and chain[-1] == root.root_pem
    with pytest.raises(lightkube.ApiError):  # no istio-ca-secret was made
        await c1.admin.get(Secret, castore.SELF_SIGNED_SECRET, namespace=ns)
    await c1.admin.patch(
        Secret, "cacerts", {"data": {"ca-key.pem": base64.b64encode(b"not a key").decode()}}, namespace=ns
    )
    with pytest.raises(errors.CaMaterialError, match=r"cacerts ca-key\.pem"):
        await castore.CaStore(c1.admin, ns).load()
