"""Wait until what an install applied is ready: Deployments available, LoadBalancer Services addressed.

A Deployment whose pods wait with one of the kubelet's image-pull reasons fails the wait at once
(ImagePullError, naming the pod, container, image and the kubelet's message) instead of at the
readiness timeout: a missing image does not appear by waiting.
"""

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
# The kubelet's waiting reasons when it cannot get a container's image (Kubernetes
# pkg/kubelet/images/types.go: ErrImagePull, ImagePullBackOff, ErrImageNeverPull, InvalidImageName)
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})


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
            if have >= want:
                return None
            problems = await _image_problems(client, dep, what)
            if problems:
                raise errors.ImagePullError(problems)
            return f"{what} ({have}/{want} available)"
        svc = await client.get(core_v1.Service, meta["name"], namespace=meta["namespace"])
        lb = svc.status.loadBalancer if svc.status else None
        return None if lb and lb.ingress else f"{what} (no load-balancer address yet)"
    except lk_exceptions.ApiError as e:
        if kube_errors.is_not_found(e):
            return f"{what} (not found)"
        raise apply.cluster_error(f"reading {what}", e) from e
    except httpx2.HTTPError as e:
        raise apply.cluster_error(f"reading {what}", e) from e


async def _image_problems(client: lightkube.AsyncClient, dep: apps_v1.Deployment, what: str) -> list[str]:
    """`what: pod P container C: REASON for image I (message)` for each of the Deployment's pods
    (its selector's matchLabels) waiting with an image-pull reason; one line per container+image."""
    selector = dep.spec.selector.matchLabels if dep.spec and dep.spec.selector else None
    if not selector or dep.metadata is None:
        return []
    found: dict[tuple[str, str], str] = {}
    try:
        pods = [p async for p in client.list(core_v1.Pod, namespace=dep.metadata.namespace, labels=selector)]
    except (lk_exceptions.ApiError, httpx2.HTTPError) as e:
        # pods unreadable (RBAC, say): the wait goes on and the readiness timeout still applies
        log.debug("could not list the pods of %s: %s", what, e)
        return []
    for pod in pods:
        st = pod.status
        statuses = [*(st.initContainerStatuses or []), *(st.containerStatuses or [])] if st else []
        for cs in statuses:
            w = cs.state.waiting if cs.state else None
            if w is None or w.reason not in IMAGE_PULL_REASONS or (cs.name, cs.image) in found:
                continue
            pod_name = pod.metadata.name if pod.metadata else "?"
            detail = f" ({w.message})" if w.message else ""
            found[(cs.name, cs.image)] = (
                f"{what}: pod {pod_name} container {cs.name}: {w.reason} for image {cs.image!r}{detail}"
            )
    return list(found.values())


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
