"""Renewal of the self-signed root before it expires (Istio's SelfSignedCARootCertRotator).

Every `interval` (CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL, 1h; zero or negative turns it off)
the root in istio-ca-secret is checked; in the last `grace_percent` % of its lifetime
(CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE, 20) a new root certificate for the same
key is written there (castore.renew_self_signed). With jitter (CITADEL_ENABLE_JITTER_FOR_ROOT_CERT_
ROTATOR, true) the first check waits a random time below the interval, so that the replicas of a
control plane do not all check at once. Writing the Secret is all it does: the CA watch
(carotation) reloads the new root in every replica and publishes it with the old one.
See istio/istio security/pkg/pki/ca/selfsignedcarootcertrotator.go and pilot/pkg/bootstrap/
istio_ca.go (the env variables). A plugged-in `cacerts` is never renewed here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import httpx2

from meshplane.runtime import clock as clock_mod
from meshplane.runtime.logging import kv
from meshplane.security import castore, errors

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 3600.0
DEFAULT_GRACE_PERCENT = 20


class RootRenewer:
    def __init__(
        self,
        store: castore.CaStore,
        *,
        cluster_id: str,
        interval: float = DEFAULT_INTERVAL,
        grace_percent: int = DEFAULT_GRACE_PERCENT,
        jitter: bool = True,
        clock: clock_mod.Clock | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self.cluster_id = cluster_id
        self.interval = interval
        self.grace_percent = grace_percent
        self.jitter = jitter
        self._clock = clock or clock_mod.SystemClock()
        self._rand = rand
        self.renewals = 0

    async def run(self) -> None:
        if self.interval <= 0:
            log.info("self-signed root renewal disabled %s", kv(cluster=self.cluster_id))
            return
        if self.jitter:
            delay = self._rand() * self.interval
            log.info("self-signed root check starts after jitter %s", kv(delay=f"{delay:.0f}s"))
            await self._clock.sleep(delay)
        while True:
            await self.check()
            await self._clock.sleep(self.interval)

    async def check(self) -> bool:
        """One check; True when this control plane wrote a renewed root."""
        try:
            renewed = await self._store.renew_self_signed(self.grace_percent)
        except errors.CaMaterialError as e:
            log.error("self-signed root check failed %s", kv(cluster=self.cluster_id, reason=e))
            return False
        except (httpx2.HTTPError, OSError) as e:
            log.warning(
                "self-signed root check failed, next at the interval %s",
                kv(cluster=self.cluster_id, error=type(e).__name__),
            )
            return False
        if renewed:
            self.renewals += 1
        return renewed
