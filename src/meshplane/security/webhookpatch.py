"""The injection webhook cert patcher: keep `caBundle` of our revision's injector webhooks current.

As Istio's pkg/webhooks/webhookpatch.go: watch MutatingWebhookConfigurations labelled
`istio.io/rev=<revision>`; every webhook entry whose name ends in `sidecar-injector.istio.io` gets
`clientConfig.caBundle` = the CA bundle that signs the control plane's webhook serving cert.
Someone editing it back is undone by the next watch event. Failures retry forever: 5 fast
(100 ms), then once a minute. No leader election: each revision patches its own webhooks.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import lightkube
from lightkube.resources.admissionregistration_v1 import MutatingWebhookConfiguration

from meshplane.kube import errors as kube_errors
from meshplane.kube import informer as inf
from meshplane.model.ids import ClusterId
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import tasks
from meshplane.runtime.logging import kv
from meshplane.security import workqueue

log = logging.getLogger(__name__)

REV_LABEL = "istio.io/rev"
WEBHOOK_SUFFIX = "sidecar-injector.istio.io"
FAST_RETRIES = 5
FAST_DELAY = 0.1
SLOW_DELAY = 60.0


def retry_delay(failures: int) -> float:
    """Istio's schedule: the first 5 retries after 100 ms, then one a minute."""
    return FAST_DELAY if failures <= FAST_RETRIES else SLOW_DELAY


def encode_bundle(ca_bundle: str) -> str:
    return base64.b64encode(ca_bundle.encode()).decode()


def stale_webhooks(mwc: Any, encoded_bundle: str) -> list[int]:
    """Indexes of injector webhook entries whose caBundle differs from the wanted one."""
    out = []
    for i, hook in enumerate(mwc.webhooks or []):
        if not str(hook.name or "").endswith(WEBHOOK_SUFFIX):
            continue
        current = hook.clientConfig.caBundle if hook.clientConfig else None
        if _as_b64(current) != encoded_bundle:
            out.append(i)
    return out


def _as_b64(value: Any) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value or "")


class WebhookPatcher:
    def __init__(
        self,
        client: lightkube.AsyncClient,
        cluster_id: ClusterId,
        revision: str,
        ca_bundle: str,
        *,
        resync_period: float = 300.0,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self._client = client
        self.cluster_id = cluster_id
        self.revision = revision or "default"
        self._encoded = encode_bundle(ca_bundle)
        self._clock = clock or clock_mod.SystemClock()
        self._informer: inf.Informer[Any] = inf.Informer(
            client,
            MutatingWebhookConfiguration,
            cluster_id=cluster_id,
            namespace="",  # cluster-scoped; the informer's None means "all namespaces"
            labels={REV_LABEL: self.revision},
            resync_period=resync_period,
            clock=clock,
        )
        self._informer.add_handler(self._on_event)
        self._queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(retry_delay, self._clock)
        self._group = tasks.TaskGroup(f"webhookpatch/{cluster_id}")
        self._run_task: asyncio.Task[Any] | None = None
        self.patches = 0  # webhook configurations written (for /debug and tests)

    def set_ca_bundle(self, ca_bundle: str) -> None:
        encoded = encode_bundle(ca_bundle)
        if encoded == self._encoded:
            return
        self._encoded = encoded
        for mwc in self._informer.items():
            self._queue.add(mwc.metadata.name)

    async def run(self) -> None:
        """Watch and patch until stop() (or cancellation)."""
        self._run_task = asyncio.current_task()
        try:
            self._group.start(self._informer.run(), "mutatingwebhookconfigurations")
            self._group.on_stop(self._queue.close)
            await self._informer.wait_synced()
            while True:
                name = await self._queue.get()
                try:
                    await self._reconcile(name)
                except Exception as e:
                    delay = self._queue.retry(name)
                    log.warning(
                        "cannot patch webhook caBundle, retrying %s",
                        kv(
                            cluster=self.cluster_id,
                            webhook=name,
                            retry_in=f"{delay:.1f}s",
                            error=kube_errors.describe(e),
                        ),
                    )
                else:
                    self._queue.forget(name)
        finally:
            await self._group.stop()

    async def stop(self) -> None:
        task, self._run_task = self._run_task, None
        if task is not None and task is not asyncio.current_task():
            await tasks.cancel(task)
        await self._group.stop()

    def _on_event(self, event: inf.Event[Any]) -> None:
        if event.type != inf.EventType.DELETED:
            self._queue.add(event.obj.metadata.name)

    async def _reconcile(self, name: str) -> None:
        cached = self._informer.get(name)
        if cached is None or not stale_webhooks(cached, self._encoded):
            return
        # Patch a fresh copy (the cache is shared); resourceVersion makes a concurrent edit a 409.
        live = await self._client.get(MutatingWebhookConfiguration, name)
        if (live.metadata.labels or {}).get(REV_LABEL) != self.revision:
            return
        stale = stale_webhooks(live, self._encoded)
        if not stale:
            return
        for i in stale:
            live.webhooks[i].clientConfig.caBundle = self._encoded
        await self._client.replace(live)
        self.patches += 1
        log.info(
            "patched webhook caBundle %s",
            kv(cluster=self.cluster_id, webhook=name, entries=len(stale), revision=self.revision),
        )
