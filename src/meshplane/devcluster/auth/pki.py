"""The cluster's CA, its serving certificate and the admin token.

With a data dir they are kept there (0600) so a restarted cluster accepts the kubeconfig and
tokens it issued before; without one they live only in memory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True, slots=True)
class ClusterPki:
    ca_cert_pem: bytes
    ca_key_pem: bytes
    admin_token: str


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_ca(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"meshplane-devcluster-ca-{name}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def load_or_create(name: str, data_dir: Path | None) -> ClusterPki:
    """Blocking (key generation, files): call through asyncio.to_thread."""
    if data_dir is not None:
        ca_crt, ca_key, tok = data_dir / "ca.crt", data_dir / "ca.key", data_dir / "admin-token"
        if ca_crt.exists() and ca_key.exists() and tok.exists():
            return ClusterPki(ca_crt.read_bytes(), ca_key.read_bytes(), tok.read_text().strip())
    cert_pem, key_pem = new_ca(name)
    token = secrets.token_urlsafe(32)
    if data_dir is not None:
        _write_private(data_dir / "ca.key", key_pem)
        _write_private(data_dir / "ca.crt", cert_pem)
        _write_private(data_dir / "admin-token", token.encode())
    return ClusterPki(cert_pem, key_pem, token)


def serving_cert(pki: ClusterPki, hosts: list[str]) -> tuple[bytes, bytes]:
    """A server certificate signed by the cluster CA with the API server's names and addresses."""
    ca_key = serialization.load_pem_private_key(pki.ca_key_pem, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    seen: set[str] = set()
    for h in ["127.0.0.1", *hosts, *SERVICE_NAMES]:
        if h in seen or not h:
            continue
        seen.add(h)
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


KUBELET_CLIENT = "kube-apiserver-kubelet-client"


def kubelet_client_ssl_context(pki: ClusterPki) -> ssl.SSLContext:
    """The API server's TLS client for kubelets: a client certificate signed by the cluster CA,
    CN `kube-apiserver-kubelet-client` (kube-apiserver's --kubelet-client-certificate; kubelets
    trust the cluster CA as their --client-ca-file). Issued anew at each start, kept in memory.
    Like kube-apiserver without --kubelet-certificate-authority, it does not verify the kubelet's
    serving certificate. Blocking (key generation, a private temp dir): call through a thread."""
    ca_key = serialization.load_pem_private_key(pki.ca_key_pem, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kubeadm:cluster-admins"),
            x509.NameAttribute(NameOID.COMMON_NAME, KUBELET_CLIENT),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with tempfile.TemporaryDirectory(prefix="meshplane-tls-") as d:
        cert_file, key_file = Path(d) / "tls.crt", Path(d) / "tls.key"
        _write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM))
        _write_private(key_file, _key_pem(key))
        ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


def server_ssl_context(cert_pem: bytes, key_pem: bytes, ca_pem: bytes) -> ssl.SSLContext:
    """Blocking (writes a private temp dir that is removed at once): call through a thread."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="meshplane-tls-") as d:
        cert_file, key_file = Path(d) / "tls.crt", Path(d) / "tls.key"
        _write_private(cert_file, cert_pem + ca_pem)
        _write_private(key_file, key_pem)
        ctx.load_cert_chain(str(cert_file), str(key_file))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
