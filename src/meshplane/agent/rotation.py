"""Keeps a valid workload certificate in the store: fetch, then rotate at half its lifetime.

Istio's secret cache (security/pkg/nodeagent/cache/secretcache.go `rotateTime`) renews when
`SECRET_GRACE_PERIOD_RATIO` (0.5) of the lifetime, measured from when the agent received the
certificate, is left, with a small random jitter so that a fleet does not renew at once. Each
renewal uses a new key. A failed request (CA down, token unreadable, bad chain) is retried with
backoff while the old certificate keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Protocol

from meshplane.agent import csr, errors, workloadcert
from meshplane.runtime import backoff
from meshplane.runtime import clock as runclock
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

GRACE_RATIO = 0.5
GRACE_JITTER = 0.01
MIN_DELAY = 0.5


class CertSource(Protocol):
    async def create(self, csr_pem: bytes, ttl_seconds: int) -> list[str]: ...


def rotation_delay(
    created: float,
    expires: float,
    now: float,
    *,
    ratio: float = GRACE_RATIO,
    jitter: float = GRACE_JITTER,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds from `now` until renewal: when `ratio` (± jitter) of the lifetime remains."""
    grace = ratio + jitter * (2 * rand() - 1)
    lifetime = max(0.0, expires - created)
    return max(MIN_DELAY, expires - grace * lifetime - now)


class CertManager:
    def __init__(
        self,
        *,
        identity: str,
        algorithm: csr.KeyAlgorithm,
        ttl_seconds: float,
        source: CertSource,
        store: workloadcert.Store,
        clock: runclock.Clock,
        retry: Callable[[], backoff.Backoff] = lambda: backoff.Backoff(initial=0.2, maximum=10.0),
        rand: Callable[[], float] = random.random,
        log_id: str = "",
    ) -> None:
        self._identity = identity
        self._algorithm = algorithm
        self._ttl = max(1, round(ttl_seconds))
        self._source = source
        self._store = store
        self._clock = clock
        self._retry = retry
        self._rand = rand
        self._log_id = log_id
        self.rotations = 0
        self.failures = 0

    async def fetch(self) -> workloadcert.WorkloadCert:
        """One attempt: new key + CSR, CA call, validation."""
        pair = await asyncio.to_thread(csr.generate, self._identity, self._algorithm)
        chain = await self._source.create(pair.csr_pem, self._ttl)
        return workloadcert.from_chain(pair.key_pem, chain, self._identity, self._clock.wall())

    async def fetch_with_retry(self) -> workloadcert.WorkloadCert:
        delays = self._retry()
        while True:
            try:
                return await self.fetch()
            except errors.AgentError as e:
                self.failures += 1
                delay = delays.next()
                log.warning(
                    "certificate request failed, retrying %s",
                    kv(proxy=self._log_id, error=e, retry_in=f"{delay:.2f}s"),
                )
                await self._clock.sleep(delay)

    async def run(self) -> None:
        while True:
            cert = await self.fetch_with_retry()
            self._store.publish(cert)
            if self._store.version > 1:
                self.rotations += 1
            delay = rotation_delay(cert.created, cert.not_after, self._clock.wall(), rand=self._rand)
            log.info(
                "workload certificate ready %s",
                kv(
                    proxy=self._log_id,
                    identity=self._identity,
                    serial=cert.serial_hex,
                    expires=workloadcert.utc(cert.not_after),
                    rotate_in=f"{delay:.1f}s",
                ),
            )
            await self._clock.sleep(delay)
