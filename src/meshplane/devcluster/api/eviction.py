"""`pods/eviction` (POST a policy/v1 Eviction): delete a pod unless its PodDisruptionBudget
forbids it, as kube-apiserver does (kubernetes/kubernetes
pkg/registry/core/pod/storage/eviction.go).

- the Eviction's name must be the pod's (400); the pod must exist (404);
- a pod that is Succeeded, Failed, Pending or already being deleted is deleted without looking
  at budgets (`canIgnorePDB`);
- the budgets whose selector matches the pod: none → delete; more than one → 500 ("This pod has
  more than one PodDisruptionBudget, which the eviction subresource does not support.");
- one: a pod that is not Ready is deleted without using the budget when the budget's
  `unhealthyPodEvictionPolicy` is AlwaysAllow, or (IfHealthyBudget, the default) when the budget
  is met (currentHealthy >= desiredHealthy > 0); otherwise the budget must have been processed
  (status.observedGeneration >= generation, else 429 "… is still being processed by the server")
  and allow a disruption (`disruptionsAllowed` > 0, else 429 TooManyRequests "Cannot evict pod as
  it would violate the pod's disruption budget." with the DisruptionBudget cause naming it); then
  the budget's status is written with one disruption fewer and the pod in `disruptedPods`
  (retried on a conflict), and the pod deleted with the Eviction's deleteOptions;
- the answer is 201 with a Success Status. dryRun checks and writes nothing.

The status the budgets carry is written by `controllers/disruption`.
"""

from __future__ import annotations

from typing import Any

from meshplane.devcluster import errors
from meshplane.devcluster.api import context, selectors
from meshplane.devcluster.controllers import disruption, objects
from meshplane.devcluster.schema import resources
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

MAX_DISRUPTED_PODS = 2000
MORE_THAN_ONE = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)
_RETRIES = 5
SUCCESS: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    return selectors.labels_match(selectors.label_selector_from_object(selector), labels)


def register(registry: resources.Registry, ctx: context.ApiContext) -> None:
    async def handler(req: resources.HandlerRequest) -> tuple[int, Obj]:
        return await evict(ctx, req)

    registry.add_subresource("", "pods", "eviction", "Eviction", handler, response_group="policy")


def _delete_options(body: Obj) -> tuple[objects.DeleteOptions, bool]:
    opts = body.get("deleteOptions") or {}
    if not isinstance(opts, dict):
        raise errors.bad_request("deleteOptions must be an object")
    pre = opts.get("preconditions") or {}
    grace = opts.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or grace < 0):
        raise errors.bad_request("deleteOptions.gracePeriodSeconds must be an integer >= 0")
    try:
        rv = int(pre["resourceVersion"]) if pre.get("resourceVersion") else None
    except (TypeError, ValueError) as e:
        raise errors.bad_request(f"deleteOptions.preconditions.resourceVersion: {e}") from e
    dry = opts.get("dryRun") or []
    if not isinstance(dry, list) or any(v != "All" for v in dry):
        raise errors.bad_request(f"Invalid dry run value: {dry!r}, valid values are: All")
    return objects.DeleteOptions(grace, opts.get("propagationPolicy"), pre.get("uid"), rv), bool(dry)


def _too_many(pdb: Obj, message: str) -> errors.ApiError:
    return errors.ApiError(
        429,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        "TooManyRequests",
        causes=[{"reason": "DisruptionBudget", "message": message}],
    )


async def evict(ctx: context.ApiContext, req: resources.HandlerRequest) -> tuple[int, Obj]:
    body = req.body or {}
    if body.get("kind") not in (None, "Eviction"):
        raise errors.bad_request(f"expected an Eviction, got kind {body.get('kind')!r}")
    name = (body.get("metadata") or {}).get("name")
    if name != req.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    opts, body_dry = _delete_options(body)
    dry = req.dry_run or body_dry
    pods = ctx.registry.lookup("", "v1", "pods")
    assert pods is not None
    for _ in range(_RETRIES):
        pod = ctx.store.get("pods", req.namespace, req.name)
        if pod is None:
            raise errors.not_found("pods", "", req.name)
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
            break
        labels = pod["metadata"].get("labels") or {}
        pdbs = [
            p
            for p in ctx.store.list(disruption.PDB_KEY, req.namespace)
            if matches((p.get("spec") or {}).get("selector"), labels)
        ]
        if not pdbs:
            break
        if len(pdbs) > 1:
            raise errors.ApiError(500, MORE_THAN_ONE, "InternalError")
        if await _check_and_decrement(ctx, pdbs[0], pod, dry):
            break
    else:
        raise errors.conflict("poddisruptionbudgets", "policy", "", "the budget changed too often; try again")
    if not dry:
        await ctx.objects.delete(pods, req.namespace, req.name, opts)
    return 201, dict(SUCCESS)


async def _check_and_decrement(ctx: context.ApiContext, pdb: Obj, pod: Obj, dry: bool) -> bool:
    """True: the pod may go (the budget is written); False: the budget changed meanwhile, retry."""
    status: dict[str, Any] = pdb.get("status") or {}
    spec = pdb.get("spec") or {}
    pdb_name = pdb["metadata"]["name"]
    if not disruption.ready(pod):
        policy = spec.get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        desired = int(status.get("desiredHealthy", 0))
        if policy == "AlwaysAllow" or (int(status.get("currentHealthy", 0)) >= desired > 0):
            return True
    if int(status.get("observedGeneration", 0)) < int(pdb["metadata"].get("generation", 1)):
        raise _too_many(pdb, f"The disruption budget {pdb_name} is still being processed by the server.")
    allowed = int(status.get("disruptionsAllowed", 0))
    if allowed < 0:
        raise errors.ApiError(403, "pdb disruptions allowed is negative", "Forbidden")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise errors.ApiError(
            403, "DisruptedPods map too big - too many evictions not confirmed by PDB controller", "Forbidden"
        )
    if allowed == 0:
        raise _too_many(
            pdb,
            f"The disruption budget {pdb_name} needs {status.get('desiredHealthy', 0)} healthy pods and "
            f"has {status.get('currentHealthy', 0)} currently",
        )
    if dry:
        return True
    status = dict(status)
    status["disruptionsAllowed"] = allowed - 1
    status["disruptedPods"] = {
        **(status.get("disruptedPods") or {}),
        pod["metadata"]["name"]: rfc3339.format(ctx.clock.wall()),
    }
    pdb["status"] = status
    try:
        await ctx.store.update(disruption.PDB_KEY, pdb, expected_rv=int(pdb["metadata"]["resourceVersion"]))
    except errors.ApiError as e:
        if e.code == 409:
            return False
        raise
    return True
