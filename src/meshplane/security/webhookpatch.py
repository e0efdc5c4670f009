"""The webhook cert patchers: keep `caBundle` of our revision's injector webhooks current
(WebhookPatcher), and run Istio's validation webhook controller (ValidationPatcher).

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
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.admissionregistration_v1 import (
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
)

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


class _Patcher:
    """Watches one kind of webhook configuration labelled `istio.io/rev=<revision>` and runs
    `_reconcile(name)` for each change, retrying failures on Istio's schedule."""

    kind: Any = MutatingWebhookConfiguration
    what = "webhookpatch"

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
            self.kind,
            cluster_id=cluster_id,
            namespace="",  # cluster-scoped; the informer's None means "all namespaces"
            labels={REV_LABEL: self.revision},
            resync_period=resync_period,
            clock=clock,
        )
        self._informer.add_handler(self._on_event)
        self._queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(retry_delay, self._clock)
        self._group = tasks.TaskGroup(f"{self.what}/{cluster_id}")
        self._run_task: asyncio.Task[Any] | None = None
        self.patches = 0  # webhook configurations written (for /debug and tests)

    def set_ca_bundle(self, ca_bundle: str) -> None:
        encoded = encode_bundle(ca_bundle)
        if encoded == self._encoded:
            return
        self._encoded = encoded
        self._requeue()

    def _requeue(self) -> None:
        for obj in self._informer.items():
            self._queue.add(obj.metadata.name)

    async def _started(self) -> None:
        """Called once the informer has synced (subclasses start helpers here)."""

    async def run(self) -> None:
        """Watch and patch until stop() (or cancellation)."""
        self._run_task = asyncio.current_task()
        try:
            self._group.start(self._informer.run(), self.kind.__name__.lower() + "s")
            self._group.on_stop(self._queue.close)
            await self._informer.wait_synced()
            await self._started()
            while True:
                name = await self._queue.get()
                try:
                    await self._reconcile(name)
                except Exception as e:
                    delay = self._queue.retry(name)
                    log.warning(
                        "cannot patch webhook configuration, retrying %s",
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
        raise NotImplementedError


class WebhookPatcher(_Patcher):
    """The injector webhooks' caBundle (entries named `*sidecar-injector.istio.io`)."""

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


# ---- the validation webhook controller

# what a dry-run of an invalid Gateway is refused with once our `/validate` serves (the API server's
# wording for any denying webhook; Istio's controller looks for the same fragment)
DENIED = "denied the request"
READY_RETRY = 1.0  # Istio re-tries the dry-run every second until it is denied
_Gateway = create_namespaced_resource("networking.istio.io", "v1", "Gateway", "gateways")


class ValidationPatcher(_Patcher):
    """Istio's validation webhook controller (pkg/webhooks/validation/controller/controller.go),
    on the config cluster only: every ValidatingWebhookConfiguration labelled
    `istio.io/rev=<revision>` (the chart's `istio-validator-<ns>` and base's
    `istiod-default-validator`) gets `caBundle` on all of its webhooks, and `failurePolicy: Fail`
    once a dry-run create of an invalid Gateway (no servers) is denied, i.e. the `/validate`
    endpoint answers through the API server; `Ignore` (fail open, as rendered) until then. A
    missing Gateway CRD makes the check impossible, which Istio takes as ready."""

    kind = ValidatingWebhookConfiguration
    what = "validationpatch"

    def __init__(
        self,
        client: lightkube.AsyncClient,
        cluster_id: ClusterId,
        revision: str,
        ca_bundle: str,
        namespace: str,
        *,
        resync_period: float = 300.0,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        super().__init__(client, cluster_id, revision, ca_bundle, resync_period=resync_period, clock=clock)
        self.namespace = namespace
        self.ready = False  # the dry-run was denied: fail closed

    @property
    def failure_policy(self) -> str:
        return "Fail" if self.ready else "Ignore"

    async def _started(self) -> None:
        self._group.start(self._until_ready(), "validation-readiness")

    async def _until_ready(self) -> None:
        while not self.ready:
            reason = await self.dry_run_denied()
            if not reason:
                self.ready = True
                log.info(
                    "validation webhook rejects invalid config: fail closed %s", kv(cluster=self.cluster_id)
                )
                self._requeue()
                return
            log.debug("validation webhook not ready %s", kv(cluster=self.cluster_id, reason=reason))
            await self._clock.sleep(READY_RETRY)

    async def dry_run_denied(self) -> str:
        """'' when a dry-run of an invalid Gateway is denied (or cannot be tried: no CRD), else why not."""
        invalid = _Gateway(metadata={"name": "invalid-gateway", "namespace": self.namespace}, spec={})
        try:
            await self._client.create(invalid, dry_run=True)
        except Exception as e:
            text = kube_errors.describe(e)
            if DENIED in text:
                return ""
            status = getattr(getattr(e, "status", None), "code", None)
            if status == 404 and "gateways" in text.lower():
                log.warning("no Gateway CRD: validation readiness cannot be checked, assuming ready")
                return ""
            return f"dry-run refused for another reason: {text}"
        return "the invalid Gateway was not refused"

    async def _reconcile(self, name: str) -> None:
        cached = self._informer.get(name)
        if cached is None:
            return
        live = await self._client.get(ValidatingWebhookConfiguration, name)
        if (live.metadata.labels or {}).get(REV_LABEL) != self.revision:
            return
        changed = 0
        for hook in live.webhooks or []:
            if hook.clientConfig is None:
                continue
            if (
                _as_b64(hook.clientConfig.caBundle) != self._encoded
                or hook.failurePolicy != self.failure_policy
            ):
                hook.clientConfig.caBundle = self._encoded
                hook.failurePolicy = self.failure_policy
                changed += 1
        if not changed:
            return
        await self._client.replace(live)
        self.patches += 1
        log.info(
            "patched validating webhook %s",
            kv(cluster=self.cluster_id, webhook=name, entries=changed, failure_policy=self.failure_policy),
        )
