"""The workload's private key and its CSR carrying the SPIFFE identity as its only URI SAN.

Istio's agent (security/pkg/nodeagent/cache) makes a fresh key per certificate: RSA 2048 by
default, EC P-256 when ECC_SIGNATURE_ALGORITHM=ECDSA. The subject stays empty; the identity lives
in the URI SAN, which is what the CA checks against the caller's token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from meshplane.agent import errors

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SA_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_TRUST_DOMAIN = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9._]*[a-zA-Z0-9])?$")


class KeyAlgorithm(StrEnum):
    RSA = "RSA"  # Istio's default: RSA 2048
    ECDSA = "ECDSA"  # EC P-256


@dataclass(frozen=True, slots=True)
class KeyAndCsr:
    key_pem: bytes  # PKCS#8, unencrypted; never logged
    csr_pem: bytes


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """`spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT`, validating each part."""
    if not _TRUST_DOMAIN.match(trust_domain):
        raise errors.ConfigError(f"invalid trust domain {trust_domain!r}")
    if not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        raise errors.ConfigError(f"invalid namespace {namespace!r}")
    if not _SA_NAME.match(service_account) or len(service_account) > 253:
        raise errors.ConfigError(f"invalid service account {service_account!r}")
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def algorithm_from_env(value: str | None) -> KeyAlgorithm:
    """ECC_SIGNATURE_ALGORITHM: empty means RSA, `ECDSA` means EC P-256 (Istio's values)."""
    if not value:
        return KeyAlgorithm.RSA
    try:
        return KeyAlgorithm(value.upper())
    except ValueError as e:
        raise errors.ConfigError(f"ECC_SIGNATURE_ALGORITHM must be ECDSA or empty, got {value!r}") from e


def generate(identity: str, algorithm: KeyAlgorithm = KeyAlgorithm.RSA) -> KeyAndCsr:
    """A new private key and a CSR for `identity` (CPU-bound for RSA: call it from a thread)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm is KeyAlgorithm.ECDSA:
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyAndCsr(key_pem=key_pem, csr_pem=csr.public_bytes(serialization.Encoding.PEM))
