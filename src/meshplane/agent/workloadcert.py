"""The workload certificate the agent holds: key, chain and root, validated, and its store.

The chain comes from the CA over the network, so it is checked before Envoy ever sees it: at least
leaf + root (Istio's client rejects a chain with <= 1 entry), every entry one PEM certificate,
each certificate issued by the next, the leaf carrying our key and our SPIFFE identity, and not
expired. The store hands the newest certificate to SDS streams and wakes them on rotation.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from meshplane.agent import errors

_BEGIN = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True, slots=True)
class WorkloadCert:
    identity: str
    key_pem: bytes  # never logged
    chain_pem: bytes  # leaf + intermediates (no root), as Envoy's tls_certificate.certificate_chain
    root_pem: bytes  # the root the chain ends in, as Envoy's validation_context (ROOTCA)
    serial: int
    not_before: float  # unix seconds
    not_after: float
    created: float  # when the agent received it (Istio measures the lifetime from here)

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")


def _pem_entry(entry: str, index: int) -> x509.Certificate:
    text = entry.strip()
    if text.count(_BEGIN) != 1 or not text.startswith(_BEGIN):
        raise errors.CertificateError(f"chain entry {index} is not exactly one PEM certificate")
    try:
        return x509.load_pem_x509_certificate(text.encode())
    except ValueError as e:
        raise errors.CertificateError(f"chain entry {index} does not parse as a certificate: {e}") from e


def from_chain(key_pem: bytes, chain: Sequence[str], identity: str, now: float) -> WorkloadCert:
    """Validate the CA's `cert_chain` (leaf first, root last) against our key and identity."""
    if len(chain) <= 1:
        raise errors.CertificateError(f"CA returned a chain of {len(chain)} entries; need leaf and root")
    certs = [_pem_entry(entry, i) for i, entry in enumerate(chain)]
    for i in range(len(certs) - 1):
        try:
            certs[i].verify_directly_issued_by(certs[i + 1])
        except (ValueError, TypeError, InvalidSignature) as e:
            raise errors.CertificateError(f"chain entry {i} is not issued by entry {i + 1}: {e}") from e
    leaf = certs[0]
    key = serialization.load_pem_private_key(key_pem, password=None)
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
        raise errors.CertificateError("leaf certificate does not carry the agent's public key")
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as e:
        raise errors.CertificateError("leaf certificate has no subject alternative names") from e
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    if identity not in uris:
        raise errors.CertificateError(f"leaf certificate is for {uris}, not {identity}")
    not_after = leaf.not_valid_after_utc.timestamp()
    if not_after <= now:
        raise errors.CertificateError("leaf certificate is already expired")
    pem = serialization.Encoding.PEM
    return WorkloadCert(
        identity=identity,
        key_pem=key_pem,
        chain_pem=b"".join(c.public_bytes(pem) for c in certs[:-1]),
        root_pem=certs[-1].public_bytes(pem),
        serial=leaf.serial_number,
        not_before=leaf.not_valid_before_utc.timestamp(),
        not_after=not_after,
        created=now,
    )


def utc(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds")


class Store:
    """The current certificate and a version that grows on every rotation."""

    def __init__(self) -> None:
        self._cert: WorkloadCert | None = None
        self._version = 0
        self._listeners: set[asyncio.Event] = set()

    @property
    def current(self) -> WorkloadCert | None:
        return self._cert

    @property
    def version(self) -> int:
        return self._version

    def publish(self, cert: WorkloadCert) -> None:
        self._cert = cert
        self._version += 1
        for event in self._listeners:
            event.set()

    def listen(self, event: asyncio.Event) -> None:
        """`event` is set on every publish until `unlisten`."""
        self._listeners.add(event)

    def unlisten(self, event: asyncio.Event) -> None:
        self._listeners.discard(event)

    async def wait_first(self) -> WorkloadCert:
        event = asyncio.Event()
        self.listen(event)
        try:
            while self._cert is None:
                await event.wait()
                event.clear()
            return self._cert
        finally:
            self.unlisten(event)
