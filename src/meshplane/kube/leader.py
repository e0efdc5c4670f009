"""Leader election on a ConfigMap lock, in the record format Istio (and client-go) use.

The record lives in the annotation `control-plane.alpha.kubernetes.io/leader` as JSON
{holderIdentity, holderKey, leaseDurationSeconds, acquireTime, renewTime, leaderTransitions}.
ConfigMap locks work with Istio's reader RBAC in remote clusters (it grants configmaps, not leases).
Keys prefixed `^` mark a remote holder; a local holder of the same revision may take over from one
(Istio's LocationPrioritizedComparison).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx2
import lightkube
from lightkube.core import exceptions as lk_exceptions
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1

from meshplane.kube import errors
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import rfc3339
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


@dataclass(frozen=True, slots=True)
class Timing:
    lease_duration: float = 30.0
    renew_deadline: float = 15.0
    retry_period: float = 7.5


@dataclass(frozen=True, slots=True)
class Record:
    holder_identity: str
    holder_key: str
    lease_duration_seconds: int
    acquire_time: str
    renew_time: str
    leader_transitions: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "holderIdentity": self.holder_identity,
                "holderKey": self.holder_key,
                "leaseDurationSeconds": self.lease_duration_seconds,
                "acquireTime": self.acquire_time,
                "renewTime": self.renew_time,
                "leaderTransitions": self.leader_transitions,
            },
            separators=(",", ":"),
        )

    @staticmethod
    def parse(raw: str | None) -> Record | None:
        if not raw:
            return None
        try:
            d = json.loads(raw)
            return Record(
                holder_identity=str(d.get("holderIdentity") or ""),
                holder_key=str(d.get("holderKey") or ""),
                lease_duration_seconds=int(d.get("leaseDurationSeconds") or 0),
                acquire_time=str(d.get("acquireTime") or ""),
                renew_time=str(d.get("renewTime") or ""),
                leader_transitions=int(d.get("leaderTransitions") or 0),
            )
        except (ValueError, TypeError, AttributeError):
            return None


def may_take_over(our_key: str, holder_key: str) -> bool:
    """A local holder (no `^`) of the same revision may steal from a remote (`^`) holder."""
    return not our_key.startswith("^") and holder_key == "^" + our_key


class LeaderElection:
    """Run `run()` as a task; `on_start` runs while leading (cancelled when leadership is lost)."""

    def __init__(
        self,
        client: lightkube.AsyncClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        key: str,
        on_start: Callable[[], Coroutine[Any, Any, None]],
        timing: Timing | None = None,
        clock: clock_mod.Clock | None = None,
        cluster_id: str = "",
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.key = key
        self.on_start = on_start
        self.timing = timing or Timing()
        self.clock = clock or clock_mod.SystemClock()
        self.cluster_id = cluster_id
        self.leading = False
        self._observed: Record | None = None
        self._observed_at = 0.0

    def _log(self, msg: str, **fields: Any) -> None:
        log.info(
            "%s %s",
            msg,
            kv(cluster=self.cluster_id, lock=f"{self.namespace}/{self.name}", id=self.identity, **fields),
        )

    async def run(self) -> None:
        try:
            while True:
                await self._acquire()
                self.leading = True
                self._log("became leader")
                work = asyncio.create_task(self.on_start(), name=f"leader/{self.name}")
                try:
                    await self._renew_until_lost(work)
                finally:
                    self.leading = False
                    work.cancel()
                    await asyncio.gather(work, return_exceptions=True)
                self._log("lost leadership")
        finally:
            if self.leading or (self._observed and self._observed.holder_identity == self.identity):
                await self._release()

    async def _acquire(self) -> None:
        while not await self._try():
            await self.clock.sleep(self.timing.retry_period * (1 + random.uniform(0, 0.2)))

    async def _renew_until_lost(self, work: asyncio.Task[None]) -> None:
        last_ok = self.clock.monotonic()
        while True:
            await self.clock.sleep(self.timing.retry_period)
            if work.done() and not work.cancelled() and work.exception() is not None:
                log.error("leader work failed %s", kv(cluster=self.cluster_id, error=repr(work.exception())))
            if await self._try():
                last_ok = self.clock.monotonic()
            elif self.clock.monotonic() - last_ok >= self.timing.renew_deadline or not self._held_by_us():
                return

    def _held_by_us(self) -> bool:
        return self._observed is not None and self._observed.holder_identity == self.identity

    async def _get(self) -> Any | None:
        try:
            return await self.client.get(core_v1.ConfigMap, self.name, namespace=self.namespace)
        except lk_exceptions.ApiError as e:
            if errors.is_not_found(e):
                return None
            raise

    async def _try(self) -> bool:
        """client-go's tryAcquireOrRenew."""
        now_wall = self.clock.wall()
        try:
            cm = await self._get()
            if cm is None:
                record = Record(
                    self.identity,
                    self.key,
                    int(self.timing.lease_duration),
                    rfc3339.format(now_wall),
                    rfc3339.format(now_wall),
                    0,
                )
                await self.client.create(
                    core_v1.ConfigMap(
                        metadata=ObjectMeta(
                            name=self.name,
                            namespace=self.namespace,
                            annotations={ANNOTATION: record.to_json()},
                        )
                    )
                )
                self._observe(record)
                return True
            current = Record.parse((cm.metadata.annotations or {}).get(ANNOTATION))
            if current != self._observed:
                self._observe(current)
            held_by_other = (
                current is not None
                and bool(current.holder_identity)
                and current.holder_identity != self.identity
            )
            if (
                held_by_other
                and current is not None
                and not self._expired(current, now_wall)
                and not may_take_over(self.key, current.holder_key)
            ):
                return False
            ours = current is not None and current.holder_identity == self.identity
            record = Record(
                holder_identity=self.identity,
                holder_key=self.key,
                lease_duration_seconds=int(self.timing.lease_duration),
                acquire_time=current.acquire_time if ours and current else rfc3339.format(now_wall),
                renew_time=rfc3339.format(now_wall),
                leader_transitions=(current.leader_transitions if current else 0) + (0 if ours else 1),
            )
            cm.metadata.annotations = {**(cm.metadata.annotations or {}), ANNOTATION: record.to_json()}
            await self.client.replace(cm)  # carries resourceVersion: a concurrent writer gets 409
            self._observe(record)
            return True
        except lk_exceptions.ApiError as e:
            if not errors.is_conflict(e):
                self._log("leader election request failed", code=e.status.code, reason=e.status.message)
            return False
        except (httpx2.HTTPError, OSError) as e:
            self._log("leader election request failed", error=type(e).__name__)
            return False

    def _observe(self, record: Record | None) -> None:
        self._observed = record
        self._observed_at = self.clock.monotonic()

    def _expired(self, record: Record, now_wall: float) -> bool:
        duration = record.lease_duration_seconds or self.timing.lease_duration
        if self._observed_at + duration <= self.clock.monotonic():
            return True
        try:
            renewed = rfc3339.parse(record.renew_time)
        except ValueError:
            return False
        return renewed + duration <= now_wall

    async def _release(self) -> None:
        try:
            cm = await self._get()
            current = (
                Record.parse((cm.metadata.annotations or {}).get(ANNOTATION)) if cm is not None else None
            )
            if cm is None or current is None or current.holder_identity != self.identity:
                return
            now = rfc3339.format(self.clock.wall())
            released = Record("", "", 1, now, now, current.leader_transitions)
            cm.metadata.annotations = {**(cm.metadata.annotations or {}), ANNOTATION: released.to_json()}
            await asyncio.shield(self.client.replace(cm))
            self._log("released leadership")
        except (lk_exceptions.ApiError, httpx2.HTTPError, OSError, asyncio.CancelledError):
            pass
