"""The mesh CA: key material (self-signed root or plugged-in intermediate) and certificate signing.

Pure and synchronous; key generation and signing are CPU work, so async callers run them in a
thread. Formats follow Istio (security/pkg/pki): a self-signed root is RSA 2048, O=<trust domain>,
10 years; workload certs carry only SPIFFE URI SANs (critical, empty subject), 24h by default,
at most 90 days; the chain handed out is leaf, intermediates, root, one PEM each ending in "\\n".
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshplane.runtime import clock as clock_mod
from meshplane.security import errors

DEFAULT_WORKLOAD_TTL = dt.timedelta(hours=24)
MAX_WORKLOAD_TTL = dt.timedelta(days=90)
SELF_SIGNED_ROOT_TTL = dt.timedelta(days=3650)
SERVING_CERT_TTL = dt.timedelta(days=365)
# Istio backdates certs a little so that peers with a slow clock accept them at once.
CLOCK_SKEW = dt.timedelta(minutes=1)
MIN_RSA_BITS = 2048

# cacerts keys (Istio's plugged-in CA secret) and istio-ca-secret keys (self-signed).
CACERTS_CERT, CACERTS_KEY, CACERTS_ROOT, CACERTS_CHAIN = (
    "ca-cert.pem",
    "ca-key.pem",
    "root-cert.pem",
    "cert-chain.pem",
)
SELF_SIGNED_CERT, SELF_SIGNED_KEY = "ca-cert.pem", "ca-key.pem"

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class KeyCertBundle:
    """What signs (cert + key), the intermediates above it, and the root that anchors them."""

    signing_cert: x509.Certificate
    signing_key: SigningKey
    intermediates: tuple[x509.Certificate, ...]  # signing cert first (if not the root), root excluded
    root: x509.Certificate

    @property
    def root_pem(self) -> str:
        return pem(self.root)

    @property
    def self_signed(self) -> bool:
        return not self.intermediates


def pem(cert: x509.Certificate) -> str:
    text = cert.public_bytes(serialization.Encoding.PEM).decode()
    return text if text.endswith("\n") else text + "\n"


def key_pem(key: SigningKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now(clock: clock_mod.Clock) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock.wall(), dt.UTC)


def _serial() -> int:
    return x509.random_serial_number()


def self_signed_root(
    org: str = "cluster.local",
    ttl: dt.timedelta = SELF_SIGNED_ROOT_TTL,
    clock: clock_mod.Clock | None = None,
    key: SigningKey | None = None,
) -> KeyCertBundle:
    """A new RSA 2048 root CA, as Istio's self-signed CA creates it at first start; with `key`, a
    new root certificate for an existing key (Istio's GenRootCertFromExistingKey, used by the
    root cert rotator: certificates the old root signed also chain to the new one)."""
    now = _now(clock or clock_mod.SystemClock())
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + ttl)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyCertBundle(signing_cert=cert, signing_key=key, intermediates=(), root=cert)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def load_certs(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise errors.CaMaterialError(f"{what}: not PEM certificates ({e})") from e
    if not certs:
        raise errors.CaMaterialError(f"{what}: no certificate")
    return certs


def load_key(data: bytes, what: str) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise errors.CaMaterialError(f"{what}: not an unencrypted PEM private key") from e
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise errors.CaMaterialError(f"{what}: key type {type(key).__name__} cannot sign (RSA or EC)")
    return key


def bundle_from_self_signed(data: Mapping[str, bytes]) -> KeyCertBundle:
    """The root stored in istio-ca-secret (ca-cert.pem + ca-key.pem)."""
    for k in (SELF_SIGNED_CERT, SELF_SIGNED_KEY):
        if not data.get(k):
            raise errors.CaMaterialError(f"istio-ca-secret: missing key {k}")
    cert = load_certs(data[SELF_SIGNED_CERT], f"istio-ca-secret {SELF_SIGNED_CERT}")[0]
    key = load_key(data[SELF_SIGNED_KEY], f"istio-ca-secret {SELF_SIGNED_KEY}")
    bundle = KeyCertBundle(signing_cert=cert, signing_key=key, intermediates=(), root=cert)
    verify_bundle(bundle, "istio-ca-secret")
    return bundle


def bundle_from_cacerts(data: Mapping[str, bytes]) -> KeyCertBundle:
    """A plugged-in intermediate from the `cacerts` Secret, checked before it is used."""
    for k in (CACERTS_CERT, CACERTS_KEY, CACERTS_ROOT):
        if not data.get(k):
            raise errors.CaMaterialError(f"cacerts: missing key {k}")
    signing = load_certs(data[CACERTS_CERT], f"cacerts {CACERTS_CERT}")[0]
    key = load_key(data[CACERTS_KEY], f"cacerts {CACERTS_KEY}")
    root = load_certs(data[CACERTS_ROOT], f"cacerts {CACERTS_ROOT}")[0]
    chain = load_certs(data[CACERTS_CHAIN], f"cacerts {CACERTS_CHAIN}") if data.get(CACERTS_CHAIN) else []
    # cert-chain.pem usually repeats ca-cert.pem and the root (Istio's Makefile); keep each once.
    inter: list[x509.Certificate] = [] if signing == root else [signing]
    for c in chain:
        if c != root and c not in inter:
            inter.append(c)
    bundle = KeyCertBundle(signing_cert=signing, signing_key=key, intermediates=tuple(inter), root=root)
    verify_bundle(bundle, "cacerts")
    return bundle


def verify_bundle(bundle: KeyCertBundle, what: str) -> None:
    """Key matches cert, signing cert is a CA, and each cert is issued by the next up to the root."""
    if bundle.signing_key.public_key().public_numbers() != bundle.signing_cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise errors.CaMaterialError(f"{what}: the CA key does not match the CA certificate")
    for c in (bundle.signing_cert, bundle.root):
        try:
            bc = c.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound as e:
            raise errors.CaMaterialError(f"{what}: {c.subject.rfc4514_string()!r} is not a CA") from e
        if not bc.ca:
            raise errors.CaMaterialError(f"{what}: {c.subject.rfc4514_string()!r} is not a CA")
    path = [*bundle.intermediates, bundle.root]
    for child, parent in itertools.pairwise(path):
        try:
            child.verify_directly_issued_by(parent)
        except Exception as e:
            raise errors.CaMaterialError(
                f"{what}: {child.subject.rfc4514_string()!r} is not issued by "
                f"{parent.subject.rfc4514_string()!r}"
            ) from e
    try:
        bundle.root.verify_directly_issued_by(bundle.root)
    except Exception as e:
        raise errors.CaMaterialError(f"{what}: the root certificate is not self-signed") from e


def check_current(bundle: KeyCertBundle, what: str, now: dt.datetime) -> None:
    """Every certificate of the bundle is valid at `now` (a reload must not install an expired or
    not-yet-valid CA: every certificate it signed would be refused)."""
    for c in (bundle.signing_cert, *bundle.intermediates, bundle.root):
        name = c.subject.rfc4514_string()
        if now < c.not_valid_before_utc:
            raise errors.CaMaterialError(f"{what}: {name!r} is not valid before {c.not_valid_before_utc}")
        if now >= c.not_valid_after_utc:
            raise errors.CaMaterialError(f"{what}: {name!r} expired at {c.not_valid_after_utc}")


def in_grace_period(cert: x509.Certificate, grace_percent: int, now: dt.datetime) -> bool:
    """Whether `cert` is in the last `grace_percent` % of its lifetime (Istio's certutil
    GetWaitTime: renew at not_after - lifetime * percent / 100)."""
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return now >= cert.not_valid_after_utc - lifetime * (grace_percent / 100)


def trust_bundle(roots: Iterable[str]) -> str:
    """PEM roots concatenated, each once, in order (what istio-ca-root-cert and caBundle carry)."""
    return "".join(dict.fromkeys(roots))


def parse_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """Parse and check a PEM CSR: valid signature and an acceptable public key."""
    raw = data.encode() if isinstance(data, str) else data
    if not raw.strip():
        raise errors.CsrError("empty CSR")
    try:
        csr = x509.load_pem_x509_csr(raw)
    except (ValueError, TypeError) as e:
        raise errors.CsrError("the CSR is not a PEM certificate request") from e
    try:
        valid = csr.is_signature_valid
        key = csr.public_key()
    except Exception as e:
        raise errors.CsrError(f"the CSR cannot be read ({type(e).__name__})") from e
    if not valid:
        raise errors.CsrError("the CSR signature is invalid")
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise errors.CsrError(
                f"the CSR's RSA key has {key.key_size} bits, at least {MIN_RSA_BITS} needed"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1):
            raise errors.CsrError(f"the CSR's EC curve {key.curve.name} is not supported (P-256, P-384)")
    else:
        raise errors.CsrError(f"the CSR's key type {type(key).__name__} is not supported")
    return csr


def csr_uris(csr: x509.CertificateSigningRequest) -> list[str]:
    """The URI SANs the CSR asks for (its requested identities)."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    except Exception as e:
        raise errors.CsrError("the CSR's extensions cannot be parsed") from e
    return [str(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)]


class MeshCA:
    """Signs workload and serving certificates with one KeyCertBundle (swappable on rotation)."""

    def __init__(
        self,
        bundle: KeyCertBundle,
        *,
        default_ttl: dt.timedelta = DEFAULT_WORKLOAD_TTL,
        max_ttl: dt.timedelta = MAX_WORKLOAD_TTL,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self.bundle = bundle
        # bundles replaced by a rotation whose certificates are still trusted (carotation sets it)
        self.retired: tuple[KeyCertBundle, ...] = ()
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self._clock = clock or clock_mod.SystemClock()

    @property
    def root_pem(self) -> str:
        """The CA bundle proxies trust (root-cert.pem in istio-ca-root-cert, webhook caBundle)."""
        return self.bundle.root_pem

    def chain_pems(self, bundle: KeyCertBundle | None = None) -> list[str]:
        """Intermediates then root: what follows a leaf in every chain this CA hands out."""
        b = bundle or self.bundle
        return [pem(c) for c in b.intermediates] + [b.root_pem]

    def trusted(self) -> tuple[KeyCertBundle, ...]:
        """The signing bundle, then the retired ones still trusted (client-cert verification)."""
        return (self.bundle, *self.retired)

    def swap(self, bundle: KeyCertBundle) -> KeyCertBundle:
        """Sign with `bundle` from now on (a CA reload); returns the bundle it replaces. Each
        signature reads the bundle once, so a leaf and its chain always come from the same one."""
        old, self.bundle = self.bundle, bundle
        return old

    def workload_ttl(self, requested_seconds: int) -> dt.timedelta:
        """Istio: non-positive → default; above the maximum → TtlError."""
        if requested_seconds <= 0:
            return self.default_ttl
        if requested_seconds > self.max_ttl.total_seconds():
            raise errors.TtlError(
                f"requested TTL {requested_seconds}s is greater than the max allowed TTL "
                f"{int(self.max_ttl.total_seconds())}s"
            )
        return dt.timedelta(seconds=requested_seconds)

    def sign_workload(
        self, csr: x509.CertificateSigningRequest, identities: Sequence[str], ttl: dt.timedelta
    ) -> list[str]:
        """A leaf for `identities` (URI SANs) with the CSR's public key; returns the full chain."""
        if not identities:
            raise errors.CsrError("no identity to put in the certificate")
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(i) for i in identities]
        b = self.bundle
        leaf = self._leaf(b, csr.public_key(), x509.Name([]), sans, ttl, critical_san=True)
        return [pem(leaf), *self.chain_pems(b)]

    def serving_cert(
        self,
        dns_names: Iterable[str],
        ip_addresses: Iterable[str] = (),
        ttl: dt.timedelta = SERVING_CERT_TTL,
    ) -> tuple[list[str], bytes]:
        """The control plane's own TLS cert and key (PEM chain, PEM key) for 15012 / 15017."""
        names = list(dict.fromkeys(dns_names))
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(ip_addresses)]
        if not sans:
            raise ValueError("a serving certificate needs at least one DNS name or IP address")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]) if names else x509.Name([])
        b = self.bundle
        leaf = self._leaf(b, key.public_key(), subject, sans, ttl, critical_san=not names)
        return [pem(leaf), *self.chain_pems(b)], key_pem(key)

    def _leaf(
        self,
        bundle: KeyCertBundle,
        public_key: object,
        subject: x509.Name,
        sans: list[x509.GeneralName],
        ttl: dt.timedelta,
        *,
        critical_san: bool,
    ) -> x509.Certificate:
        now = _now(self._clock)
        issuer = bundle.signing_cert
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(_serial())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + ttl)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(sans), critical=critical_san)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        return builder.sign(bundle.signing_key, hashes.SHA256())


def serving_dns_names(namespace: str, revision: str = "default", extra: Iterable[str] = ()) -> list[str]:
    """istiod's DNS SANs (pilot/pkg/bootstrap): istiod, istiod-remote, istio-pilot, istiod-<rev>."""
    names = [f"istiod.{namespace}.svc", f"istiod-remote.{namespace}.svc", f"istio-pilot.{namespace}.svc"]
    if revision and revision != "default":
        names.append(f"istiod-{revision}.{namespace}.svc")
    return list(dict.fromkeys([*names, *extra]))
