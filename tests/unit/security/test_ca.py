"""The mesh CA: root creation, plugged-in intermediates, workload and serving certificates."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from meshplane.security import ca, errors
from tests.support import secpki

SPIFFE = "spiffe://cluster.local/ns/sample/sa/sleep"
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class FixedClock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def monotonic(self) -> float:
        return self.at.timestamp()

    def wall(self) -> float:
        return self.at.timestamp()

    async def sleep(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def root() -> ca.KeyCertBundle:
    return ca.self_signed_root("cluster.local")


def _certs(chain: list[str]) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(p.encode()) for p in chain]


def _verify_client(chain: list[str], root_cert: x509.Certificate, at: dt.datetime) -> list[str]:
    certs = _certs(chain)
    store = verification.Store([root_cert])
    verifier = verification.PolicyBuilder().store(store).time(at).build_client_verifier()
    verified = verifier.verify(certs[0], certs[1:-1])
    return [str(u.value) for u in verified.subjects or [] if isinstance(u, x509.UniformResourceIdentifier)]


def test_self_signed_root_is_istio_shaped(root: ca.KeyCertBundle) -> None:
    cert = root.root
    assert isinstance(root.signing_key, rsa.RSAPrivateKey) and root.signing_key.key_size == 2048
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "cluster.local"
    assert cert.subject == cert.issuer
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3649) < life <= dt.timedelta(days=3651)
    assert root.self_signed and root.intermediates == ()


def test_workload_chain_order_san_and_default_ttl(root: ca.KeyCertBundle) -> None:
    mesh = ca.MeshCA(root, clock=FixedClock(T0))
    csr = ca.parse_csr(secpki.csr_pem([SPIFFE]))
    chain = mesh.sign_workload(csr, [SPIFFE], mesh.workload_ttl(0))
    assert len(chain) == 2
    assert all(p.endswith("-----END CERTIFICATE-----\n") and p.count("BEGIN") == 1 for p in chain)
    leaf, last = _certs(chain)
    assert last == root.root
    assert leaf.public_key() == csr.public_key()
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical and san.value.get_values_for_type(x509.UniformResourceIdentifier) == [SPIFFE]
    assert leaf.subject == x509.Name([])
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_after_utc == T0 + dt.timedelta(hours=24)
    assert _verify_client(chain, root.root, T0) == [SPIFFE]


def test_ttl_requested_default_and_cap(root: ca.KeyCertBundle) -> None:
    mesh = ca.MeshCA(root, default_ttl=dt.timedelta(hours=2), max_ttl=dt.timedelta(hours=5))
    assert mesh.workload_ttl(0) == dt.timedelta(hours=2)
    assert mesh.workload_ttl(-7) == dt.timedelta(hours=2)
    assert mesh.workload_ttl(3600) == dt.timedelta(hours=1)
    assert mesh.workload_ttl(5 * 3600) == dt.timedelta(hours=5)
    with pytest.raises(errors.TtlError, match="greater than the max allowed TTL 18000s"):
        mesh.workload_ttl(5 * 3600 + 1)
    assert ca.MeshCA(root).max_ttl == dt.timedelta(days=90)


@pytest.mark.parametrize("depth", [1, 2])
def test_plugged_in_intermediate_chain_validates_to_root(depth: int) -> None:
    data, root = secpki.intermediate_cacerts(depth=depth)
    bundle = ca.bundle_from_cacerts(data)
    assert len(bundle.intermediates) == depth and bundle.root == root.root
    mesh = ca.MeshCA(bundle)
    chain = mesh.sign_workload(ca.parse_csr(secpki.csr_pem([SPIFFE])), [SPIFFE], dt.timedelta(hours=1))
    assert len(chain) == depth + 2
    certs = _certs(chain)
    assert certs[-1] == root.root and certs[1] == bundle.signing_cert
    assert _verify_client(chain, root.root, dt.datetime.now(dt.UTC)) == [SPIFFE]
    # a different root does not anchor it
    other = ca.self_signed_root()
    with pytest.raises(verification.VerificationError):
        _verify_client(chain, other.root, dt.datetime.now(dt.UTC))


def test_cacerts_without_chain_file_still_chains() -> None:
    data, root = secpki.intermediate_cacerts(depth=1)
    del data[ca.CACERTS_CHAIN]
    bundle = ca.bundle_from_cacerts(data)
    assert [c for c in bundle.intermediates] == [bundle.signing_cert]
    assert ca.MeshCA(bundle).chain_pems() == [ca.pem(bundle.signing_cert), root.root_pem]


def test_cacerts_rejects_bad_material(root: ca.KeyCertBundle) -> None:
    data, _ = secpki.intermediate_cacerts()
    with pytest.raises(errors.CaMaterialError, match=r"missing key ca-key\.pem"):
        ca.bundle_from_cacerts({k: v for k, v in data.items() if k != ca.CACERTS_KEY})
    with pytest.raises(errors.CaMaterialError, match="does not match"):
        ca.bundle_from_cacerts({**data, ca.CACERTS_KEY: ca.key_pem(ec.generate_private_key(ec.SECP256R1()))})
    with pytest.raises(errors.CaMaterialError, match="is not issued by"):
        ca.bundle_from_cacerts({**data, ca.CACERTS_ROOT: root.root_pem.encode()})
    with pytest.raises(errors.CaMaterialError, match="not PEM"):
        ca.bundle_from_cacerts({**data, ca.CACERTS_CERT: b"-----BEGIN CERTIFICATE-----\ngarbage\n"})
    with pytest.raises(errors.CaMaterialError, match="private key"):
        ca.bundle_from_cacerts({**data, ca.CACERTS_KEY: b"nope"})


def test_self_signed_secret_roundtrip(root: ca.KeyCertBundle) -> None:
    data = {ca.SELF_SIGNED_CERT: root.root_pem.encode(), ca.SELF_SIGNED_KEY: ca.key_pem(root.signing_key)}
    again = ca.bundle_from_self_signed(data)
    assert again.root == root.root and again.self_signed
    with pytest.raises(errors.CaMaterialError, match=r"missing key ca-cert\.pem"):
        ca.bundle_from_self_signed({ca.SELF_SIGNED_KEY: data[ca.SELF_SIGNED_KEY]})


def test_serving_cert_sans_and_server_verification(root: ca.KeyCertBundle) -> None:
    names = ca.serving_dns_names("istio-system", "canary", extra=["istiod.example.com"])
    assert names == [
        "istiod.istio-system.svc",
        "istiod-remote.istio-system.svc",
        "istio-pilot.istio-system.svc",
        "istiod-canary.istio-system.svc",
        "istiod.example.com",
    ]
    assert "istiod-default.istio-system.svc" not in ca.serving_dns_names("istio-system")
    chain, key = ca.MeshCA(root).serving_cert(names, ["127.0.0.1"])
    certs = _certs(chain)
    san = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == names
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    store = verification.Store([root.root])
    for subject in (
        x509.DNSName("istiod-remote.istio-system.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ):
        verifier = verification.PolicyBuilder().store(store).build_server_verifier(subject)
        verifier.verify(certs[0], certs[1:-1])
    with pytest.raises(verification.VerificationError):
        verification.PolicyBuilder().store(store).build_server_verifier(x509.DNSName("evil.example")).verify(
            certs[0], []
        )
    assert b"PRIVATE KEY" in key


def test_parse_csr_rejects_bad_input() -> None:
    with pytest.raises(errors.CsrError, match="empty"):
        ca.parse_csr(b"  ")
    with pytest.raises(errors.CsrError, match="not a PEM"):
        ca.parse_csr(b"hello")
    with pytest.raises(errors.CsrError, match="not a PEM"):
        ca.parse_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(errors.CsrError, match="1024 bits"):
        ca.parse_csr(secpki.csr_pem([SPIFFE], key=weak))
    # a CSR whose signature belongs to another request (RSA: same signature length, so swappable)
    key = rsa.generate_private_key(65537, 2048)
    good = x509.load_pem_x509_csr(secpki.csr_pem([SPIFFE], key=key))
    other = x509.load_pem_x509_csr(secpki.csr_pem(["spiffe://cluster.local/ns/x/sa/y"], key=key))
    der = good.public_bytes(serialization.Encoding.DER).replace(good.signature, other.signature)
    forged = (
        b"-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(der)
        + b"-----END CERTIFICATE REQUEST-----\n"
    )
    with pytest.raises(errors.CsrError, match="signature is invalid"):
        ca.parse_csr(forged)


def test_csr_uris() -> None:
    assert ca.csr_uris(ca.parse_csr(secpki.csr_pem())) == []
    assert ca.csr_uris(ca.parse_csr(secpki.csr_pem([SPIFFE, "spiffe://x/ns/a/sa/b"], dns=["a.b"]))) == [
        SPIFFE,
        "spiffe://x/ns/a/sa/b",
    ]


def test_sign_without_identity_refused(root: ca.KeyCertBundle) -> None:
    with pytest.raises(errors.CsrError, match="no identity"):
        ca.MeshCA(root).sign_workload(ca.parse_csr(secpki.csr_pem()), [], dt.timedelta(hours=1))
