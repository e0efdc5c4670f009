"""Apply rendered objects to a cluster: create what is missing, update what differs, skip the rest.

A server-side-apply-like create-or-update through lightkube that works on any API server (no apply
patches needed): an object is replaced only when a field we set differs, so a second run changes
nothing. Fields other actors own are kept on update: labels and annotations we do not set, Service
cluster IPs and node ports, and the webhook `caBundle` the control plane patches in. CRDs are applied
first and must be Established before anything else is.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import lightkube
from lightkube import codecs
from lightkube.core import exceptions as lk_exceptions
from lightkube.resources import apiextensions_v1

from meshplane.installer import compare, errors, manifest
from meshplane.kube import errors as kube_errors
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import logging as rlog

log = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
CRD_TIMEOUT = 60.0

Progress = Callable[[str, str], None]  # (object description, action)


@dataclass
class ApplyResult:
    actions: dict[str, list[str]] = field(default_factory=lambda: {CREATED: [], UPDATED: [], UNCHANGED: []})

    def count(self, action: str) -> int:
        return len(self.actions[action])


def cluster_error(what: str, e: Exception) -> errors.ClusterError:
    if isinstance(e, lk_exceptions.ApiError):
        return errors.ClusterError(
            f"{what}: {kube_errors.status_code(e) or 0} {e.status.reason or ''}: {e.status.message}".strip()
        )
    if isinstance(e, httpx2.TimeoutException):
        return errors.ClusterError(f"{what}: the API server did not answer in time")
    if isinstance(e, httpx2.HTTPError):
        return errors.ClusterError(f"{what}: cannot reach the API server: {e}")
    return errors.ClusterError(f"{what}: {e}")


def _carry_over(want: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The object to PUT: ours, plus what others own in the live one."""
    out = copy.deepcopy(want)
    meta, live_meta = out.setdefault("metadata", {}), live.get("metadata") or {}
    meta["resourceVersion"] = live_meta.get("resourceVersion")
    for key in ("labels", "annotations"):
        merged = {**(live_meta.get(key) or {}), **(meta.get(key) or {})}
        if merged:
            meta[key] = merged
    kind = want.get("kind")
    if kind == "Service":
        spec, live_spec = out.setdefault("spec", {}), live.get("spec") or {}
        for key in ("clusterIP", "clusterIPs", "healthCheckNodePort", "ipFamilies", "ipFamilyPolicy"):
            if key in live_spec and key not in spec:
                spec[key] = live_spec[key]
        live_ports = {p.get("name"): p for p in live_spec.get("ports") or []}
        for p in spec.get("ports") or []:
            node_port = (live_ports.get(p.get("name")) or {}).get("nodePort")
            if node_port and "nodePort" not in p:
                p["nodePort"] = node_port
    if kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        live_hooks = {h.get("name"): h for h in live.get("webhooks") or []}
        for hook in out.get("webhooks") or []:
            bundle = ((live_hooks.get(hook.get("name")) or {}).get("clientConfig") or {}).get("caBundle")
            if bundle and "caBundle" not in hook.get("clientConfig", {}):
                hook.setdefault("clientConfig", {})["caBundle"] = bundle
    return out


class Applier:
    def __init__(self, client: lightkube.AsyncClient, clock: clock_mod.Clock | None = None) -> None:
        self.client = client
        self.clock = clock or clock_mod.SystemClock()

    async def get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        res = type(codecs.from_dict(obj))
        meta = obj["metadata"]
        try:
            live = await self.client.get(res, meta["name"], namespace=meta.get("namespace"))
        except lk_exceptions.ApiError as e:
            if kube_errors.is_not_found(e):
                return None
            raise
        out: dict[str, Any] = live.to_dict()
        return out

    async def apply_one(self, obj: dict[str, Any]) -> str:
        what = manifest.describe(obj)
        try:
            for _ in range(3):  # a conflicting writer in between: read again and retry
                live = await self.get(obj)
                if live is None:
                    await self.client.create(codecs.from_dict(obj))
                    return CREATED
                if obj["kind"] == "Namespace":
                    return await self._namespace(obj, live)
                if compare.is_subset(obj, live):
                    return UNCHANGED
                try:
                    await self.client.replace(codecs.from_dict(_carry_over(obj, live)))
                except lk_exceptions.ApiError as e:
                    if kube_errors.is_conflict(e):
                        continue
                    raise
                return UPDATED
        except (lk_exceptions.ApiError, httpx2.HTTPError) as e:
            raise cluster_error(f"applying {what}", e) from e
        raise errors.ClusterError(f"applying {what}: it kept changing under us (409 Conflict three times)")

    async def _namespace(self, obj: dict[str, Any], live: dict[str, Any]) -> str:
        """Namespaces are only created, or given our labels: never replaced (annotations stay)."""
        want = obj["metadata"].get("labels") or {}
        have = (live.get("metadata") or {}).get("labels") or {}
        if want.items() <= have.items():
            return UNCHANGED
        res = type(codecs.from_dict(obj))
        await self.client.patch(res, obj["metadata"]["name"], {"metadata": {"labels": want}})
        return UPDATED

    async def wait_established(self, names: Sequence[str], within: float = CRD_TIMEOUT) -> None:
        deadline = self.clock.monotonic() + within
        pending = list(names)
        while pending:
            still = []
            for name in pending:
                try:
                    crd = await self.client.get(apiextensions_v1.CustomResourceDefinition, name)
                except (lk_exceptions.ApiError, httpx2.HTTPError) as e:
                    raise cluster_error(f"reading CustomResourceDefinition {name}", e) from e
                conds = (crd.status.conditions if crd.status else None) or []
                if not any(c.type == "Established" and c.status == "True" for c in conds):
                    still.append(name)
            pending = still
            if pending:
                if self.clock.monotonic() >= deadline:
                    raise errors.ClusterError(
                        f"CustomResourceDefinitions not Established after {within:g}s: {', '.join(pending)}"
                    )
                await self.clock.sleep(0.2)

    async def apply(self, objs: Sequence[dict[str, Any]], progress: Progress | None = None) -> ApplyResult:
        """Apply in order (CRDs, then namespaces, then the rest); stop at the first failure."""
        result = ApplyResult()
        crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
        rest = [o for o in objs if o["kind"] != "CustomResourceDefinition"]
        for batch in (crds, rest):
            for obj in batch:
                action = await self.apply_one(obj)
                what = manifest.describe(obj)
                result.actions[action].append(what)
                log.info("%s %s", action, rlog.kv(object=what))
                if progress:
                    progress(what, action)
            if batch is crds and crds:
                await self.wait_established([o["metadata"]["name"] for o in crds])
        return result
