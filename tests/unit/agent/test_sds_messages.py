import datetime as dt
import time

import pytest
from cryptography import x509
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from meshplane.agent import csr, sds, workloadcert
from meshplane.security import ca

ID = "spiffe://cluster.local/ns/sample/sa/sleep"


@pytest.fixture(scope="module")
def cert() -> workloadcert.WorkloadCert:
    mesh_ca = ca.MeshCA(ca.self_signed_root())
    pair = csr.generate(ID, csr.KeyAlgorithm.ECDSA)
    chain = mesh_ca.sign_workload(x509.load_pem_x509_csr(pair.csr_pem), [ID], dt.timedelta(hours=1))
    return workloadcert.from_chain(pair.key_pem, chain, ID, time.time())


def test_default_secret_carries_key_and_chain(cert: workloadcert.WorkloadCert) -> None:
    s = sds.secret("default", cert)
    assert s is not None and s.name == "default"
    assert s.tls_certificate.certificate_chain.inline_bytes == cert.chain_pem
    assert s.tls_certificate.private_key.inline_bytes == cert.key_pem
    assert not s.HasField("validation_context")


def test_rootca_secret_carries_only_the_root(cert: workloadcert.WorkloadCert) -> None:
    s = sds.secret("ROOTCA", cert)
    assert s is not None and s.name == "ROOTCA"
    assert s.validation_context.trusted_ca.inline_bytes == cert.root_pem
    assert not s.HasField("tls_certificate")


def test_unknown_name_is_not_served(cert: workloadcert.WorkloadCert) -> None:
    assert sds.secret("file-cert:/etc/x.pem~/etc/y.pem", cert) is None


def test_response_packs_requested_known_secrets(cert: workloadcert.WorkloadCert) -> None:
    resp = sds.response(["ROOTCA", "default", "nope", "default"], cert, "3", "7")
    assert resp.type_url == sds.TYPE_URL
    assert resp.version_info == "3" and resp.nonce == "7"
    names = []
    for any_msg in resp.resources:
        assert any_msg.type_url == sds.TYPE_URL
        s = secret_pb2.Secret()
        assert any_msg.Unpack(s)
        names.append(s.name)
    assert names == ["ROOTCA", "default"]
