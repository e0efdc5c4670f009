import asyncio
import datetime as dt
import time

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshplane.agent import csr, errors, workloadcert
from meshplane.security import ca
from tests.support import secpki

ID = "spiffe://cluster.local/ns/sample/sa/sleep"


@pytest.fixture(scope="module")
def mesh_ca() -> ca.MeshCA:
    return ca.MeshCA(ca.self_signed_root())


def _signed(mesh_ca: ca.MeshCA, identity: str = ID, ttl: float = 3600) -> tuple[csr.KeyAndCsr, list[str]]:
    pair = csr.generate(identity, csr.KeyAlgorithm.ECDSA)
    chain = mesh_ca.sign_workload(x509.load_pem_x509_csr(pair.csr_pem), [identity], dt.timedelta(seconds=ttl))
    return pair, chain


def test_valid_chain(mesh_ca: ca.MeshCA) -> None:
    pair, chain = _signed(mesh_ca)
    now = time.time()
    cert = workloadcert.from_chain(pair.key_pem, chain, ID, now)
    assert cert.root_pem.decode() == mesh_ca.root_pem
    assert cert.chain_pem.decode() == chain[0]
    assert cert.key_pem == pair.key_pem
    assert cert.created == now
    assert cert.not_after == pytest.approx(now + 3600, abs=5)
    leaf = x509.load_pem_x509_certificate(chain[0].encode())
    assert cert.serial == leaf.serial_number


def _intermediate(root: ca.KeyCertBundle) -> ca.KeyCertBundle:
    cert, key = secpki.intermediate(root.root, root.signing_key, days=1)
    return ca.KeyCertBundle(signing_cert=cert, signing_key=key, intermediates=(cert,), root=root.root)


def test_intermediate_ca_chain_keeps_intermediates_and_serves_the_root_apart() -> None:
    root = ca.self_signed_root()
    pair, chain = _signed(ca.MeshCA(_intermediate(root)))
    assert len(chain) == 3
    cert = workloadcert.from_chain(pair.key_pem, chain, ID, time.time())
    assert cert.chain_pem.decode() == chain[0] + chain[1]
    assert cert.root_pem.decode() == root.root_pem


@pytest.mark.parametrize("cut", [0, 1])
def test_short_chain_is_refused(mesh_ca: ca.MeshCA, cut: int) -> None:
    pair, chain = _signed(mesh_ca)
    with pytest.raises(errors.CertificateError, match="need leaf and root"):
        workloadcert.from_chain(pair.key_pem, chain[:cut], ID, time.time())


def test_wrong_key_is_refused(mesh_ca: ca.MeshCA) -> None:
    _, chain = _signed(mesh_ca)
    other = csr.generate(ID, csr.KeyAlgorithm.ECDSA)
    with pytest.raises(errors.CertificateError, match="public key"):
        workloadcert.from_chain(other.key_pem, chain, ID, time.time())


def test_wrong_identity_is_refused(mesh_ca: ca.MeshCA) -> None:
    pair, chain = _signed(mesh_ca, identity="spiffe://cluster.local/ns/sample/sa/other")
    with pytest.raises(errors.CertificateError, match=r"not spiffe://cluster\.local/ns/sample/sa/sleep"):
        workloadcert.from_chain(pair.key_pem, chain, ID, time.time())


def test_chain_from_another_root_is_refused(mesh_ca: ca.MeshCA) -> None:
    pair, chain = _signed(mesh_ca)
    stranger = ca.self_signed_root()
    with pytest.raises(errors.CertificateError, match="not issued by"):
        workloadcert.from_chain(pair.key_pem, [chain[0], stranger.root_pem], ID, time.time())


@pytest.mark.parametrize(
    "entry", ["garbage", "", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_garbage_entries_are_refused(mesh_ca: ca.MeshCA, entry: str) -> None:
    pair, chain = _signed(mesh_ca)
    with pytest.raises(errors.CertificateError, match="entry 0"):
        workloadcert.from_chain(pair.key_pem, [entry, chain[1]], ID, time.time())


def test_two_certs_in_one_entry_are_refused(mesh_ca: ca.MeshCA) -> None:
    pair, chain = _signed(mesh_ca)
    with pytest.raises(errors.CertificateError, match="exactly one"):
        workloadcert.from_chain(pair.key_pem, [chain[0] + chain[1], chain[1]], ID, time.time())


def test_expired_leaf_is_refused(mesh_ca: ca.MeshCA) -> None:
    pair, chain = _signed(mesh_ca, ttl=60)
    with pytest.raises(errors.CertificateError, match="expired"):
        workloadcert.from_chain(pair.key_pem, chain, ID, time.time() + 120)


async def test_store_wakes_listeners_and_counts_versions(mesh_ca: ca.MeshCA) -> None:
    store = workloadcert.Store()
    waiter = asyncio.create_task(store.wait_first())
    await asyncio.sleep(0)
    assert not waiter.done()
    pair, chain = _signed(mesh_ca)
    cert = workloadcert.from_chain(pair.key_pem, chain, ID, time.time())
    event = asyncio.Event()
    store.listen(event)
    store.publish(cert)
    assert await waiter is cert
    assert event.is_set() and store.version == 1
    store.unlisten(event)
    event.clear()
    store.publish(cert)
    assert not event.is_set() and store.version == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(
        st.one_of(
            st.text(max_size=200),
            st.sampled_from(["-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n"]),
        ),
        max_size=4,
    ),
    keep=st.integers(min_value=0, max_value=2),
)
def test_any_ca_answer_gives_a_valid_cert_or_certificate_error(
    mesh_ca: ca.MeshCA, data: list[str], keep: int
) -> None:
    pair, chain = _signed(mesh_ca)
    answer = chain[:keep] + data
    try:
        cert = workloadcert.from_chain(pair.key_pem, answer, ID, time.time())
    except errors.CertificateError:
        return
    assert answer[:2] == chain and cert.identity == ID
