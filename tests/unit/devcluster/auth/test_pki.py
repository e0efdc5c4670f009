from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509

from meshplane.devcluster.auth import pki


def test_ca_and_token_persist_in_the_data_dir(tmp_path: Path) -> None:
    first = pki.load_or_create("c1", tmp_path)
    again = pki.load_or_create("c1", tmp_path)
    assert first == again
    for name in ("ca.crt", "ca.key", "admin-token"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert pki.load_or_create("c1", None) != pki.load_or_create("c1", None)


def test_serving_cert_names_and_issuer() -> None:
    ca = pki.load_or_create("c1", None)
    cert_pem, _key = pki.serving_cert(ca, ["127.0.5.5", "devhost"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        "localhost",
        "devhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    }
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("127.0.5.5"),
    }
    ca_cert = x509.load_pem_x509_certificate(ca.ca_cert_pem)
    cert.verify_directly_issued_by(ca_cert)
