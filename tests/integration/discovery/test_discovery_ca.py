"""The certificate service of the real `meshplane discovery` on 15012: a cluster2 workload gets a
certificate only because the remote secret gives the control plane cluster2's TokenReview."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1

from meshplane.agent import certclient, csr, errors, upstream
from meshplane.discovery import app
from tests.support import kubeobjects
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for


def client_for(d: app.Discovery, tmp: Path, token: str, cluster_id: str) -> certclient.CertClient:
    assert d.security is not None and d.ports.secure_grpc
    (tmp / "token").write_text(token)
    (tmp / "root.pem").write_text(d.security.ca.root_pem)
    return certclient.CertClient(
        upstream.Upstream(
            address=f"127.0.0.1:{d.ports.secure_grpc}",
            cluster_id=cluster_id,
            token_path=tmp / "token",
            root_cert_path=tmp / "root.pem",
            hosts_path=tmp / "hosts",
            server_name="istiod.istio-system.svc",
        )
    )


async def test_cluster2_workload_certificate_needs_the_remote_secret(
    clusters: tuple[ThreadedCluster, ThreadedCluster], discovery: app.Discovery, tmp_path: Path
) -> None:
    c1, c2 = clusters
    ns = unique("sample")
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    for w in (w1, w2):
        await kubeobjects.ensure_namespace(w, ns)
        await w.create(core_v1.ServiceAccount(metadata=ObjectMeta(name="sleep", namespace=ns)))
    token2 = c2.run(lambda: c2.cluster.security.issue_token(ns, "sleep", ["istio-ca"]))
    token1 = c1.run(lambda: c1.cluster.security.issue_token(ns, "sleep", ["istio-ca"]))
    identity = csr.spiffe_id("cluster.local", ns, "sleep")
    request = csr.generate(identity, csr.KeyAlgorithm.ECDSA).csr_pem

    # no remote secret yet: cluster2 is unknown, the request is refused with Istio's reason
    with pytest.raises(errors.CertificateError, match=r"UNAUTHENTICATED.*client claims to be in cluster"):
        await client_for(discovery, tmp_path, token2, "cluster2").create(request, 3600)

    await w1.create(kubeobjects.remote_secret(c2.kubeconfig))
    await wait_for(lambda: "cluster2" in discovery._remote_ids(), what="cluster2 attached")
    chain = await client_for(discovery, tmp_path, token2, "cluster2").create(request, 3600)
    leaf = x509.load_pem_x509_certificate(chain[0].encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [identity]
    assert chain[-1] == (discovery.security.ca.root_pem if discovery.security else "")

    # a cluster1 token claiming to come from cluster2 is checked by cluster2's API server: refused
    with pytest.raises(errors.CertificateError, match="UNAUTHENTICATED"):
        await client_for(discovery, tmp_path, token1, "cluster2").create(request, 3600)
    # a CSR for another identity is refused even with a good token
    other = csr.generate(csr.spiffe_id("cluster.local", ns, "admin"), csr.KeyAlgorithm.ECDSA).csr_pem
    with pytest.raises(errors.CertificateError, match="PERMISSION_DENIED"):
        await client_for(discovery, tmp_path, token2, "cluster2").create(other, 3600)
    await w1.close()
    await w2.close()
