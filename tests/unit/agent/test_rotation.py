import asyncio
import datetime as dt

import pytest
from cryptography import x509

from meshplane.agent import csr, errors, rotation, workloadcert
from meshplane.runtime import backoff
from meshplane.security import ca
from tests.support.fakeclock import FakeClock
from tests.support.wait import wait_for

ID = "spiffe://cluster.local/ns/sample/sa/sleep"


def test_rotation_at_half_lifetime_without_jitter() -> None:
    assert rotation.rotation_delay(1000.0, 1000.0 + 86400, 1000.0, rand=lambda: 0.5) == pytest.approx(43200)
    # measured from when the cert was received, so time already spent is subtracted
    assert rotation.rotation_delay(1000.0, 1060.0, 1010.0, rand=lambda: 0.5) == pytest.approx(20)


def test_jitter_bounds() -> None:
    lo = rotation.rotation_delay(0.0, 100.0, 0.0, rand=lambda: 0.0)
    hi = rotation.rotation_delay(0.0, 100.0, 0.0, rand=lambda: 1.0)
    assert lo == pytest.approx(51.0) and hi == pytest.approx(49.0)


def test_overdue_rotation_waits_the_minimum() -> None:
    assert rotation.rotation_delay(0.0, 100.0, 99.0, rand=lambda: 0.5) == rotation.MIN_DELAY


class _CA:
    """Signs with a real MeshCA on the fake clock; fails the first `fail` calls."""

    def __init__(self, clock: FakeClock, fail: int = 0) -> None:
        self.ca = ca.MeshCA(ca.self_signed_root(), clock=clock)
        self.fail = fail
        self.calls: list[int] = []
        self.csrs: list[bytes] = []

    async def create(self, csr_pem: bytes, ttl_seconds: int) -> list[str]:
        self.calls.append(ttl_seconds)
        self.csrs.append(csr_pem)
        if self.fail:
            self.fail -= 1
            raise errors.UpstreamError("connection refused")
        req = x509.load_pem_x509_csr(csr_pem)
        return self.ca.sign_workload(req, [ID], dt.timedelta(seconds=ttl_seconds))


def _manager(
    clock: FakeClock, source: _CA, store: workloadcert.Store, ttl: float = 60
) -> rotation.CertManager:
    return rotation.CertManager(
        identity=ID,
        algorithm=csr.KeyAlgorithm.ECDSA,
        ttl_seconds=ttl,
        source=source,
        store=store,
        clock=clock,
        retry=lambda: backoff.Backoff(initial=1.0, maximum=8.0, jitter=0.0),
        rand=lambda: 0.5,
    )


async def test_rotates_at_half_ttl_with_a_new_key_each_time() -> None:
    clock = FakeClock()
    source = _CA(clock)
    store = workloadcert.Store()
    manager = _manager(clock, source, store, ttl=60)
    task = asyncio.create_task(manager.run())
    serials: list[int] = []

    def three_serials() -> bool:
        cert = store.current
        if cert is not None and (not serials or serials[-1] != cert.serial):
            serials.append(cert.serial)
        return len(serials) >= 3

    try:
        await wait_for(three_serials, timeout=10, interval=0.01, what="two rotations")
    finally:
        task.cancel()
    assert len(set(serials)) == 3
    assert source.calls[:3] == [60, 60, 60]
    assert len(set(source.csrs)) == len(source.csrs)
    # certs are backdated by the CA, but the lifetime counts from receipt: 60s TTL -> 30s
    assert clock.sleeps[:2] == [pytest.approx(30.0), pytest.approx(30.0)]
    assert manager.rotations >= 2


async def test_ca_down_is_retried_with_backoff_and_old_cert_kept() -> None:
    clock = FakeClock()
    source = _CA(clock, fail=3)
    store = workloadcert.Store()
    manager = _manager(clock, source, store)
    cert = await manager.fetch_with_retry()
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert manager.failures == 3
    assert cert.identity == ID


async def test_bad_chain_is_retried_not_published() -> None:
    clock = FakeClock()
    store = workloadcert.Store()

    class _Liar(_CA):
        async def create(self, csr_pem: bytes, ttl_seconds: int) -> list[str]:
            chain = await super().create(csr_pem, ttl_seconds)
            return chain if len(self.calls) > 1 else chain[:1]

    source = _Liar(clock)
    manager = _manager(clock, source, store)
    task = asyncio.create_task(manager.run())
    try:
        await asyncio.wait_for(store.wait_first(), 5)
    finally:
        task.cancel()
    assert manager.failures == 1 and len(source.calls) >= 2
    assert clock.sleeps[0] == 1.0
