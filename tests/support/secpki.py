"""The tests' one certificate builder: a throwaway CA issuing leaf certificates (SPIFFE URI, DNS or IP
SANs), intermediate CAs and `cacerts` layouts, and CSRs as a workload (or an attacker) would make them."""

from __future__ import annotations

import datetime
import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshplane.security import ca


def csr_pem(
    uris: list[str] | None = None,
    *,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    dns: list[str] | None = None,
) -> bytes:
    """A PEM CSR asking for the given URI SANs (none → no SAN extension)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test")])
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris or []]
    names += [x509.DNSName(d) for d in dns or []]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def intermediate(
    issuer_cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    org: str = "intermediate",
    days: int = 365,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """An intermediate CA certificate (and its key) signed by the issuer."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    return cert, key


def intermediate_cacerts(
    org: str = "cluster.local", depth: int = 1
) -> tuple[dict[str, bytes], ca.KeyCertBundle]:
    """A `cacerts` Secret's data: a root and `depth` intermediates, laid out as Istio's Makefile does
    (cert-chain.pem = ca-cert.pem + intermediates above it + root-cert.pem)."""
    root = ca.self_signed_root(org)
    issuer_cert, issuer_key = root.root, root.signing_key
    chain: list[x509.Certificate] = []
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = issuer_key
    for i in range(depth):
        cert, key = intermediate(issuer_cert, issuer_key, f"{org} intermediate {i}")
        chain.insert(0, cert)
        issuer_cert, issuer_key = cert, key
    data = {
        ca.CACERTS_CERT: ca.pem(chain[0]).encode(),
        ca.CACERTS_KEY: ca.key_pem(key),
        ca.CACERTS_ROOT: root.root_pem.encode(),
        ca.CACERTS_CHAIN: "".join([*(ca.pem(c) for c in chain), root.root_pem]).encode(),
    }
    return data, root


@dataclass(frozen=True)
class Pair:
    cert_pem: bytes
    key_pem: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class CA:
    def __init__(self, name: str = "meshplane test root") -> None:
        self.key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, *, uris: tuple[str, ...] = (), dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()
    ) -> Pair:
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        sans += [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([])
                if uris
                else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else "leaf")])
            )
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=bool(uris))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))
