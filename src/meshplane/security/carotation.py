"""CA rotation: reload the mesh CA when its Secrets change, publish the new root with the old one.

Watches `cacerts` (plugged-in CA) and `istio-ca-secret` (self-signed) in the control plane's
namespace of the primary. On a change (debounced 100 ms, as Istio's handleCACertsFileWatch in
pilot/pkg/bootstrap/istio_ca.go) the stored material is read and checked in full before anything
changes: parse, key matches cert, CA constraints, chain up to a self-signed root (ca.verify_bundle)
and every certificate valid now (ca.check_current). Bad material is logged with the reason,
counted in `meshplane_ca_reload_errors_total`, kept in `last_error`, and the CA in use keeps
signing; nothing is published.

A good new bundle is swapped into the MeshCA (workload CSRs are signed by it from then on) and the
trust bundle, the new root followed by the roots it replaced, is handed to every listener: the
root-cert ConfigMaps and webhook caBundles of every managed cluster, and the control plane's own
serving certificates. A replaced root stays in the trust bundle for `transition` seconds (by
default the longest workload certificate TTL, so every certificate it signed has expired by then),
after which the bundle is published again without it. Client certificates of a replaced CA are
accepted (authenticate.ClientCertAuthenticator, via MeshCA.retired) for the same period.

Istio's counterparts: the self-signed CA's root cert rotator (security/pkg/pki/ca/
selfsignedcarootcertrotator.go) reloads istio-ca-secret when it holds another root than the one in
memory and keeps the replaced roots with appendRootCerts; its periodic check is jittered
(CITADEL_ENABLE_JITTER_FOR_ROOT_CERT_ROTATOR) so that many istiods do not rotate at once. Here the
Secrets are watched, so a change is seen at once by every control plane; the renewal of a
self-signed root near expiry, with its jitter, is rootrenew.py, which only writes the Secret.
For a plugged-in CA, Istio's handleEvent accepts a new root only when one root-cert.pem contains
the other (the operator supplies the combined bundle); here the combined bundle is built for the
operator, for the transition period.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import lightkube
from lightkube.resources.core_v1 import Secret

from meshplane.kube import informer as inf
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import tasks
from meshplane.runtime.logging import kv
from meshplane.security import ca, castore, errors, metrics

log = logging.getLogger(__name__)

DEBOUNCE = 0.1  # Istio: 100 ms after the last cacerts file event
RETRY = 5.0  # the Secrets could not be read (API server unreachable): try again after this

# Called with the trust bundle (PEM roots, the signing root first) after every CA swap.
BundleListener = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Retired:
    bundle: ca.KeyCertBundle
    until: float  # clock.monotonic() after which it is no longer trusted

    @property
    def pem(self) -> str:
        return self.bundle.root_pem


class CaRotator:
    def __init__(
        self,
        client: lightkube.AsyncClient,
        store: castore.CaStore,
        mesh: ca.MeshCA,
        ca_metrics: metrics.CaMetrics,
        *,
        cluster_id: str,
        transition: float,
        clock: clock_mod.Clock | None = None,
        debounce: float = DEBOUNCE,
    ) -> None:
        self._store = store
        self._mesh = mesh
        self._metrics = ca_metrics
        self.cluster_id = cluster_id
        self.transition = transition
        self._clock = clock or clock_mod.SystemClock()
        self._debounce = debounce
        self._informers: list[inf.Informer[Any]] = [
            inf.Informer(
                client,
                Secret,
                cluster_id=cluster_id,
                namespace=store.namespace,
                fields={"metadata.name": name},
                clock=clock,
            )
            for name in (castore.CACERTS_SECRET, castore.SELF_SIGNED_SECRET)
        ]
        for i in self._informers:
            i.add_handler(self._on_event)
        self._listeners: list[BundleListener] = []
        self._retired: list[Retired] = []
        self._wake = asyncio.Event()
        self._group = tasks.TaskGroup("ca-rotation")
        self.last_error = ""  # why the last change was refused ("" once a good one is loaded)
        self.reloads = 0  # CA swaps done

    @property
    def trust_bundle(self) -> str:
        """The roots proxies must trust now: the signing root, then the ones in transition."""
        return ca.trust_bundle([self._mesh.root_pem, *(r.pem for r in self._retired)])

    def subscribe(self, listener: BundleListener) -> None:
        self._listeners.append(listener)

    def _on_event(self, _event: inf.Event[Any]) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Watch until cancelled; the first events (the current Secrets) find nothing changed."""
        try:
            for i in self._informers:
                self._group.start(i.run(), f"secret/{i.fields}")
            while True:
                await self._wait()
                if self._wake.is_set():
                    await self._clock.sleep(self._debounce)
                    self._wake.clear()
                    try:
                        await self.reload()
                    except Exception as e:  # a bug must not stop rotation; the CA in use serves on
                        log.exception("CA reload failed %s", kv(cluster=self.cluster_id))
                        self._refuse(self._store.source, f"reload failed: {type(e).__name__}")
                if self._expire():
                    await self._publish()
        finally:
            await self._group.stop()

    async def stop(self) -> None:
        await self._group.stop()

    async def _wait(self) -> None:
        """Until a Secret event, or the next retired root's end of transition."""
        if not self._retired:
            await self._wake.wait()
            return
        left = min(r.until for r in self._retired) - self._clock.monotonic()
        if left > 0:
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                pass

    def _expire(self) -> bool:
        now = self._clock.monotonic()
        kept = [r for r in self._retired if r.until > now]
        dropped = len(self._retired) - len(kept)
        self._set_retired(kept)
        if dropped:
            log.info(
                "old root no longer trusted, transition over %s",
                kv(cluster=self.cluster_id, dropped=dropped, still_trusted=len(kept)),
            )
        return dropped > 0

    def _refuse(self, secret: str, reason: str) -> bool:
        self.last_error = reason
        self._metrics.ca_reload_errors.labels(secret=secret).inc()
        log.error(
            "CA material refused, the CA in use keeps serving %s",
            kv(cluster=self.cluster_id, namespace=self._store.namespace, secret=secret, reason=reason),
        )
        return False

    async def reload(self) -> bool:
        """Read and check the stored CA; swap and publish when it differs. True when swapped."""
        previous_source = self._store.source
        try:
            bundle = await self._store.read()
        except errors.CaMaterialError as e:
            return self._refuse(_secret_named(str(e), previous_source), str(e))
        except (httpx2.HTTPError, OSError) as e:
            log.warning(
                "cannot read the CA Secrets, retrying %s",
                kv(cluster=self.cluster_id, error=type(e).__name__, retry_in=f"{RETRY:.0f}s"),
            )
            self._group.start(self._retry_later(), "retry")
            return False
        if bundle is None:
            return self._refuse(
                previous_source,
                f"neither {castore.CACERTS_SECRET} nor {castore.SELF_SIGNED_SECRET} exists "
                f"in {self._store.namespace}",
            )
        source = self._store.source
        try:
            ca.check_current(bundle, source, dt.datetime.now(dt.UTC))
        except errors.CaMaterialError as e:
            self._store.source = previous_source
            return self._refuse(source, str(e))
        current = self._mesh.bundle
        if _same(bundle, current):
            self.last_error = ""
            return False
        old = self._mesh.swap(bundle)
        now = self._clock.monotonic()
        root_changed = old.root != bundle.root
        # the replaced bundle stays trusted (its root published, its certificates accepted as
        # client certificates) for the transition; going back to a retired CA ends its retirement
        kept = [r for r in self._retired if not _same(r.bundle, bundle) and not _same(r.bundle, old)]
        self._set_retired([*kept, Retired(old, now + self.transition)])
        self.last_error = ""
        self.reloads += 1
        self._metrics.ca_reloads.inc()
        log.info(
            "CA reloaded %s",
            kv(
                cluster=self.cluster_id,
                secret=source,
                root_changed=root_changed,
                trusted_roots=self.trust_bundle.count("BEGIN CERTIFICATE"),
                old_root_trusted_for=f"{self.transition:.0f}s" if root_changed else None,
            ),
        )
        await self._publish()
        return True

    def _set_retired(self, retired: list[Retired]) -> None:
        self._retired = retired
        self._mesh.retired = tuple(r.bundle for r in retired)

    async def _retry_later(self) -> None:
        await self._clock.sleep(RETRY)
        self._wake.set()

    async def _publish(self) -> None:
        bundle = self.trust_bundle
        for listener in self._listeners:
            try:
                await listener(bundle)
            except Exception:  # one consumer failing must not stop the others
                log.exception("CA bundle listener failed %s", kv(cluster=self.cluster_id))


def _same(a: ca.KeyCertBundle, b: ca.KeyCertBundle) -> bool:
    return (a.signing_cert, a.intermediates, a.root) == (b.signing_cert, b.intermediates, b.root)


def _secret_named(message: str, fallback: str) -> str:
    """Which Secret an error is about (its messages start with the Secret's name)."""
    for name in (castore.CACERTS_SECRET, castore.SELF_SIGNED_SECRET):
        if message.startswith(name) or f"/{name}" in message or f"Secret {name}" in message:
            return name
    return fallback
