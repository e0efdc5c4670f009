"""The CA client against the real certificate service over TLS: success, refusals, trust failures."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from meshplane.agent import certclient, csr, errors, upstream, workloadcert
from meshplane.security import ca
from tests.support import casrv, labpod

SLEEP = "spiffe://cluster.local/ns/sample/sa/sleep"


def _target(root: Path, port: int, cluster_id: str = "cluster1") -> upstream.Upstream:
    return upstream.Upstream(
        address=f"istiod.istio-system.svc:{port}",
        cluster_id=cluster_id,
        token_path=root / "var/run/secrets/tokens/istio-token",
        root_cert_path=root / "var/run/secrets/istio/root-cert.pem",
        hosts_path=root / "etc/hosts",
    )


def _pod(tmp_path: Path, ca_server: casrv.CaServer, sa: str = "sleep", root_pem: str | None = None) -> Path:
    return labpod.write(
        tmp_path,
        token=ca_server.reviewer.issue("sample", sa),
        root_pem=root_pem or ca_server.mesh.root_pem,
        hosts={"istiod.istio-system.svc": "127.0.0.1"},
    )


async def test_issues_a_chain_the_agent_accepts(tmp_path: Path, ca_server: casrv.CaServer) -> None:
    pair = csr.generate(SLEEP, csr.KeyAlgorithm.RSA)
    client = certclient.CertClient(_target(_pod(tmp_path, ca_server), ca_server.port))
    chain = await client.create(pair.csr_pem, 3600)
    cert = workloadcert.from_chain(pair.key_pem, chain, SLEEP, time.time())
    assert cert.root_pem.decode() == ca_server.mesh.root_pem
    assert cert.not_after - cert.not_before == pytest.approx(3600 + ca.CLOCK_SKEW.total_seconds())
    assert ca_server.issued() == 1


async def test_refusal_carries_the_ca_reason(tmp_path: Path, ca_server: casrv.CaServer) -> None:
    # a token for service account `sleep` asking for another identity
    pair = csr.generate("spiffe://cluster.local/ns/sample/sa/admin", csr.KeyAlgorithm.ECDSA)
    client = certclient.CertClient(_target(_pod(tmp_path, ca_server), ca_server.port))
    with pytest.raises(
        errors.CertificateError, match=r"failed: PERMISSION_DENIED: the CSR requests identities .*sa/admin"
    ):
        await client.create(pair.csr_pem, 3600)
    assert ca_server.issued() == 0


async def test_unknown_cluster_is_refused_with_istio_message(
    tmp_path: Path, ca_server: casrv.CaServer
) -> None:
    pair = csr.generate(SLEEP, csr.KeyAlgorithm.ECDSA)
    client = certclient.CertClient(_target(_pod(tmp_path, ca_server), ca_server.port, cluster_id="cluster2"))
    with pytest.raises(errors.CertificateError, match='client claims to be in cluster "cluster2"'):
        await client.create(pair.csr_pem, 3600)


async def test_server_outside_the_mounted_root_is_not_trusted(
    tmp_path: Path, ca_server: casrv.CaServer
) -> None:
    stranger = ca.MeshCA(ca.self_signed_root()).root_pem
    pair = csr.generate(SLEEP, csr.KeyAlgorithm.ECDSA)
    client = certclient.CertClient(_target(_pod(tmp_path, ca_server, root_pem=stranger), ca_server.port))
    with pytest.raises(errors.UpstreamError, match="cannot connect"):
        await client.create(pair.csr_pem, 3600)
    assert ca_server.issued() == 0 and not ca_server.reviewer.calls


async def test_missing_token_fails_before_dialing(tmp_path: Path, ca_server: casrv.CaServer) -> None:
    root = _pod(tmp_path, ca_server)
    (root / "var/run/secrets/tokens/istio-token").unlink()
    pair = csr.generate(SLEEP, csr.KeyAlgorithm.ECDSA)
    with pytest.raises(errors.CredentialError, match="istio-token"):
        await certclient.CertClient(_target(root, ca_server.port)).create(pair.csr_pem, 3600)


async def test_dialing_an_ip_verifies_istiod_san(tmp_path: Path, ca_server: casrv.CaServer) -> None:
    root = _pod(tmp_path, ca_server)
    pair = csr.generate(SLEEP, csr.KeyAlgorithm.ECDSA)
    by_ip = dataclasses.replace(_target(root, ca_server.port), address=f"127.0.0.1:{ca_server.port}")
    # the serving cert has no IP SAN for 127.0.0.1: refused unless the expected name is given
    with pytest.raises(errors.UpstreamError):
        await certclient.CertClient(by_ip).create(pair.csr_pem, 3600)
    named = dataclasses.replace(by_ip, server_name="istiod.istio-system.svc")
    assert len(await certclient.CertClient(named).create(pair.csr_pem, 3600)) == 2
