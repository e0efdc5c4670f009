"""Wait until what an install applied is ready: Deployments available, LoadBalancer Services addressed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx2
import lightkube
from lightkube.core import exceptions as lk_exceptions
from lightkube.resources import apps_v1, core_v1

from meshplane.installer import apply, errors, manifest
from meshplane.kube import errors as kube_errors
from meshplane.runtime import clock as clock_mod

log = logging.getLogger(__name__)

Waiting = Callable[[Sequence[str]], None]  # called with what is still not ready, on every round
POLL = 1.0


def watched(objs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects whose readiness the install waits for."""
    return [
        o
        for o in objs
        if o["kind"] == "Deployment"
        or (o["kind"] == "Service" and (o.get("spec") or {}).get("type") == "LoadBalancer")
    ]


async def _not_ready(client: lightkube.AsyncClient, obj: dict[str, Any]) -> str | None:
    meta = obj["metadata"]
    what = manifest.describe(obj)
    try:
        if obj["kind"] == "Deployment":
            dep = await client.get(apps_v1.Deployment, meta["name"], namespace=meta["namespace"])
            want = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
            have = (dep.status.availableReplicas if dep.status else None) or 0
            return None if have >= want else f"{what} ({have}/{want} available)"
        svc = await client.get(core_v1.Service, meta["name"], namespace=meta["namespace"])
        lb = svc.status.loadBalancer if svc.status else None
        return None if lb and lb.ingress else f"{what} (no load-balancer address yet)"
    except lk_exceptions.ApiError as e:
        if kube_errors.is_not_found(e):
            return f"{what} (not found)"
        raise apply.cluster_error(f"reading {what}", e) from e
    except httpx2.HTTPError as e:
        raise apply.cluster_error(f"reading {what}", e) from e


async def wait_ready(
    client: lightkube.AsyncClient,
    objs: Sequence[dict[str, Any]],
    within: float,
    clock: clock_mod.Clock | None = None,
    waiting: Waiting | None = None,
) -> None:
    """Poll until every watched object is ready; ReadinessTimeout names what is not after `within` s."""
    clock = clock or clock_mod.SystemClock()
    deadline = clock.monotonic() + within
    todo = watched(objs)
    while True:
        pending = [p for p in [await _not_ready(client, o) for o in todo] if p]
        if not pending:
            return
        if waiting:
            waiting(pending)
        if clock.monotonic() >= deadline:
            raise errors.ReadinessTimeout(within, pending)
        await clock.sleep(min(POLL, max(0.0, deadline - clock.monotonic())))
