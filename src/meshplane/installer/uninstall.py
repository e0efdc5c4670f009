"""Uninstall: delete what installs created, selected by Istio's install labels (SPEC §9).

`--purge` deletes every object carrying `operator.istio.io/component` (any value) among Istio's kinds,
namespaced ones in every namespace and cluster ones including CRDs; nothing without the label is
touched. Deletion uses Foreground propagation, as Istio's: the API server's garbage collector deletes
an object's dependents (ReplicaSets, Pods) before the object itself; `wait_gone` then waits until
every deleted object has really disappeared, and names the ones that have not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import lightkube
from lightkube import operators
from lightkube import types as lk_types
from lightkube.core import exceptions as lk_exceptions
from lightkube.resources import (
    admissionregistration_v1,
    apiextensions_v1,
    apps_v1,
    autoscaling_v2,
    core_v1,
    discovery_v1,
    policy_v1,
    rbac_authorization_v1,
)

from meshplane.installer import apply, errors, labels, manifest
from meshplane.kube import errors as kube_errors
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import logging as rlog

log = logging.getLogger(__name__)

# Workloads first, the definitions everything else depends on last.
NAMESPACED: tuple[Any, ...] = (
    apps_v1.Deployment,
    apps_v1.DaemonSet,
    autoscaling_v2.HorizontalPodAutoscaler,
    policy_v1.PodDisruptionBudget,
    core_v1.Service,
    discovery_v1.EndpointSlice,
    core_v1.Pod,
    core_v1.ConfigMap,
    core_v1.Secret,
    core_v1.ServiceAccount,
    rbac_authorization_v1.Role,
    rbac_authorization_v1.RoleBinding,
)
CLUSTER: tuple[Any, ...] = (
    admissionregistration_v1.MutatingWebhookConfiguration,
    admissionregistration_v1.ValidatingWebhookConfiguration,
    rbac_authorization_v1.ClusterRole,
    rbac_authorization_v1.ClusterRoleBinding,
    apiextensions_v1.CustomResourceDefinition,
)
PRUNABLE_COMPONENTS = (labels.PILOT, labels.INGRESS, labels.EGRESS, "Cni", "Ztunnel")

Deleted = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    name: str
    namespace: str | None

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


async def _list(client: lightkube.AsyncClient, res: Any, selector: dict[str, Any]) -> list[Target]:
    namespaced = res in NAMESPACED
    kwargs: dict[str, Any] = {"labels": selector}
    if namespaced:
        kwargs["namespace"] = lightkube.ALL_NS
    out = []
    try:
        async for obj in client.list(res, **kwargs):
            out.append(
                Target(res.__name__, obj.metadata.name, obj.metadata.namespace if namespaced else None)
            )
    except lk_exceptions.ApiError as e:
        if kube_errors.is_not_found(e):  # kind not served by this API server
            return []
        raise apply.cluster_error(f"listing {res.__name__}", e) from e
    except httpx2.HTTPError as e:
        raise apply.cluster_error(f"listing {res.__name__}", e) from e
    return out


async def find(client: lightkube.AsyncClient, selector: dict[str, Any]) -> list[tuple[Any, Target]]:
    found: list[tuple[Any, Target]] = []
    for res in NAMESPACED + CLUSTER:
        found += [(res, t) for t in await _list(client, res, selector)]
    return found


def purge_selector() -> dict[str, Any]:
    return {labels.COMPONENT: operators.exists()}


def revision_selector(revision: str) -> dict[str, Any]:
    return {labels.COMPONENT: operators.in_(list(PRUNABLE_COMPONENTS)), labels.REV: revision or "default"}


async def purge_targets(client: lightkube.AsyncClient) -> list[tuple[Any, Target]]:
    """`--purge`: everything with the component label."""
    return await find(client, purge_selector())


async def revision_targets(client: lightkube.AsyncClient, revision: str) -> list[tuple[Any, Target]]:
    """`--revision R`: the revision's control plane and gateways; CRDs and Base stay."""
    return await find(client, revision_selector(revision))


async def install_targets(
    client: lightkube.AsyncClient, rendered: Sequence[dict[str, Any]]
) -> list[tuple[Any, Target]]:
    """`-f FILE`: what that install renders, present in the cluster, Base (CRDs) excepted."""
    wanted = {
        manifest.describe(o)
        for o in rendered
        if (o["metadata"].get("labels") or {}).get(labels.COMPONENT) in PRUNABLE_COMPONENTS
    }
    return [(r, t) for r, t in await find(client, purge_selector()) if str(t) in wanted]


async def delete(
    client: lightkube.AsyncClient, targets: Sequence[tuple[Any, Target]], deleted: Deleted | None = None
) -> list[Target]:
    """Delete each target (already gone is fine); returns what was deleted now."""
    done = []
    for res, t in targets:
        try:
            if t.namespace:
                await client.delete(
                    res, t.name, namespace=t.namespace, cascade=lk_types.CascadeType.FOREGROUND
                )
            else:
                await client.delete(res, t.name, cascade=lk_types.CascadeType.FOREGROUND)
        except lk_exceptions.ApiError as e:
            if kube_errors.is_not_found(e):
                continue
            raise apply.cluster_error(f"deleting {t}", e) from e
        except httpx2.HTTPError as e:
            raise apply.cluster_error(f"deleting {t}", e) from e
        log.info("deleted %s", rlog.kv(object=str(t)))
        done.append(t)
        if deleted:
            deleted(str(t))
    return done


async def _exists(client: lightkube.AsyncClient, res: Any, t: Target) -> bool:
    try:
        if t.namespace:
            await client.get(res, t.name, namespace=t.namespace)
        else:
            await client.get(res, t.name)
    except lk_exceptions.ApiError as e:
        if kube_errors.is_not_found(e):
            return False
        raise apply.cluster_error(f"reading {t}", e) from e
    except httpx2.HTTPError as e:
        raise apply.cluster_error(f"reading {t}", e) from e
    return True


async def wait_gone(
    client: lightkube.AsyncClient,
    targets: Sequence[tuple[Any, Target]],
    within: float = 60.0,
    clock: clock_mod.Clock | None = None,
) -> None:
    """Wait until the deleted objects are gone (finalizers done); ClusterError names what is left."""
    clock = clock or clock_mod.SystemClock()
    deadline = clock.monotonic() + within
    left = list(targets)
    while True:
        left = [(r, t) for r, t in left if await _exists(client, r, t)]
        if not left:
            return
        if clock.monotonic() >= deadline:
            names = ", ".join(str(t) for _, t in left)
            raise errors.ClusterError(f"still being deleted after {within:g}s (finalizers pending): {names}")
        await clock.sleep(0.25)
