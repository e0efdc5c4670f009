"""Pure parts of the namespace controller, the webhook patcher and their work queue."""

from __future__ import annotations

import asyncio
import base64

from lightkube.models.admissionregistration_v1 import MutatingWebhook, WebhookClientConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.admissionregistration_v1 import MutatingWebhookConfiguration
from lightkube.resources.core_v1 import ConfigMap

from meshplane.security import nscontroller, webhookpatch, workqueue

ROOT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_webhook_retry_schedule_is_istios() -> None:
    assert [webhookpatch.retry_delay(n) for n in range(1, 8)] == [0.1] * 5 + [60.0, 60.0]


def _hook(name: str, bundle: str | None) -> MutatingWebhook:
    return MutatingWebhook(
        name=name,
        clientConfig=WebhookClientConfig(caBundle=bundle),
        admissionReviewVersions=["v1"],
        sideEffects="None",
    )


def test_stale_webhooks_only_injector_entries() -> None:
    enc = webhookpatch.encode_bundle(ROOT)
    assert base64.b64decode(enc).decode() == ROOT
    mwc = MutatingWebhookConfiguration(
        metadata=ObjectMeta(name="istio-sidecar-injector"),
        webhooks=[
            _hook("rev.namespace.sidecar-injector.istio.io", None),
            _hook("rev.object.sidecar-injector.istio.io", enc),
            _hook("namespace.sidecar-injector.istio.io", webhookpatch.encode_bundle("other")),
            _hook("validation.istio.io", None),
        ],
    )
    assert webhookpatch.stale_webhooks(mwc, enc) == [0, 2]


def test_configmap_needs_update() -> None:
    good = ConfigMap(
        metadata=ObjectMeta(name="istio-ca-root-cert", labels={"istio.io/config": "true", "x": "y"}),
        data={"root-cert.pem": ROOT},
    )
    assert not nscontroller.needs_update(good, ROOT)
    assert nscontroller.needs_update(good, ROOT + "x")
    extra = ConfigMap(metadata=good.metadata, data={"root-cert.pem": ROOT, "evil": "1"})
    assert nscontroller.needs_update(extra, ROOT)
    unlabelled = ConfigMap(metadata=ObjectMeta(name="istio-ca-root-cert"), data={"root-cert.pem": ROOT})
    assert nscontroller.needs_update(unlabelled, ROOT)


async def test_workqueue_dedupes_and_retries_with_growing_delay() -> None:
    delays: list[int] = []

    def delay_for(n: int) -> float:
        delays.append(n)
        return 0.0

    q: workqueue.WorkQueue[str] = workqueue.WorkQueue(delay_for)
    q.add("a")
    q.add("a")
    q.add("b")
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert q._queue.empty()
    q.retry("a")
    assert await asyncio.wait_for(q.get(), 5) == "a"
    q.retry("a")
    assert await asyncio.wait_for(q.get(), 5) == "a"
    assert delays == [1, 2] and q.failures("a") == 2
    q.forget("a")
    q.retry("a")
    assert delays == [1, 2, 1]
    await q.close()
