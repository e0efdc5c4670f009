import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from meshplane.agent import csr, errors


def test_spiffe_id() -> None:
    assert csr.spiffe_id("cluster.local", "sample", "sleep") == "spiffe://cluster.local/ns/sample/sa/sleep"


@pytest.mark.parametrize(
    ("td", "ns", "sa"),
    [("", "ns", "sa"), ("td", "NS", "sa"), ("td", "ns", ""), ("td", "a/b", "sa"), ("td/x", "ns", "sa")],
)
def test_spiffe_id_rejects_bad_parts(td: str, ns: str, sa: str) -> None:
    with pytest.raises(errors.ConfigError):
        csr.spiffe_id(td, ns, sa)


@given(st.text(max_size=80))
def test_spiffe_id_never_builds_an_ambiguous_uri(ns: str) -> None:
    try:
        uri = csr.spiffe_id("cluster.local", ns, "sa")
    except errors.ConfigError:
        return
    assert uri.count("/") == 6 and uri.endswith("/sa/sa")


@pytest.mark.parametrize(
    ("algorithm", "key_type"),
    [(csr.KeyAlgorithm.RSA, rsa.RSAPrivateKey), (csr.KeyAlgorithm.ECDSA, ec.EllipticCurvePrivateKey)],
)
def test_generate_key_and_csr(algorithm: csr.KeyAlgorithm, key_type: type) -> None:
    identity = "spiffe://cluster.local/ns/sample/sa/sleep"
    pair = csr.generate(identity, algorithm)
    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    assert isinstance(key, key_type)
    if isinstance(key, rsa.RSAPrivateKey):
        assert key.key_size == 2048
    req = x509.load_pem_x509_csr(pair.csr_pem)
    assert req.is_signature_valid
    san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [identity]
    assert list(req.subject) == []
    assert req.public_key().public_numbers() == key.public_key().public_numbers()


def test_algorithm_from_env() -> None:
    assert csr.algorithm_from_env(None) is csr.KeyAlgorithm.RSA
    assert csr.algorithm_from_env("") is csr.KeyAlgorithm.RSA
    assert csr.algorithm_from_env("ECDSA") is csr.KeyAlgorithm.ECDSA
    with pytest.raises(errors.ConfigError, match="ECC_SIGNATURE_ALGORITHM"):
        csr.algorithm_from_env("DSA")
