"""The scale subresource (`.../NAME/scale`) of the kinds that list it in resources (Deployments,
ReplicaSets, StatefulSets, ReplicationControllers): an autoscaling/v1 Scale, read with get and
written with update or patch, as kube-apiserver's ScaleREST serves it (k8s.io/kubernetes
pkg/registry/apps/deployment/storage/storage.go: scaleFromDeployment, scaleUpdatedObjectInfo;
pkg/apis/autoscaling/validation ValidateScale).

A write changes only the parent's spec.replicas (its generation moves, so controllers watching the
parent react); metadata.resourceVersion in the Scale is a precondition on the parent. Admission sees
the Scale (kind autoscaling/v1 Scale, resource <parent>, subresource scale), as webhooks do.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from aiohttp import web

from meshplane.devcluster import errors, seams
from meshplane.devcluster.api import bodies, context, patch, representation, routing, writes
from meshplane.devcluster.schema import resources
from meshplane.runtime.jsonobj import Obj

GROUP, VERSION, KIND = resources.SUBRESOURCE_KINDS["scale"]
API_VERSION = f"{GROUP}/{VERSION}"
SCHEMA = resources.SUBRESOURCE_SCHEMAS["scale"]
_SCALE_RT = resources.ResourceType(GROUP, VERSION, KIND, "scale", "scale", True, schema_name=SCHEMA)
_RETRIES = 8


def selector_string(selector: Any, *, flat: bool) -> str:
    """A label selector in its string form (metav1.LabelSelectorAsSelector(...).String(); a
    ReplicationController's selector is a plain map, labels.SelectorFromSet). Sorted by key."""
    if not isinstance(selector, dict):
        return ""
    labels = selector if flat else selector.get("matchLabels") or {}
    reqs: list[tuple[str, str]] = [(str(k), f"{k}={v}") for k, v in labels.items()]
    for e in [] if flat else selector.get("matchExpressions") or []:
        if not isinstance(e, dict):
            continue
        key, op = str(e.get("key", "")), e.get("operator")
        values = ",".join(sorted(str(v) for v in e.get("values") or []))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(str(op))
        if text is not None:
            reqs.append((key, text))
    return ",".join(text for _k, text in sorted(reqs, key=lambda r: r[0]))


def to_scale(rt: resources.ResourceType, obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    replicas = spec.get("replicas")
    out_status: Obj = {"replicas": int(status.get("replicas") or 0)}
    selector = selector_string(spec.get("selector"), flat=rt.group == "")
    if selector:
        out_status["selector"] = selector
    return {
        "kind": KIND,
        "apiVersion": API_VERSION,
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": replicas} if replicas else {},
        "status": out_status,
    }


def _replicas(scale: Obj, name: str) -> int:
    """spec.replicas of a written Scale: 400 when it is not an int32, 422 when it is negative."""
    if scale.get("apiVersion") not in (None, "", API_VERSION) or scale.get("kind") not in (None, "", KIND):
        raise errors.bad_request(
            f"the body of the request must be a {API_VERSION} {KIND}, not "
            f"{scale.get('apiVersion')} {scale.get('kind')}"
        )
    spec = scale.get("spec") or {}
    if not isinstance(spec, dict):
        raise errors.bad_request(
            f'{KIND} in version "{VERSION}" cannot be handled as a {KIND}: spec: expected object'
        )
    value = spec.get("replicas", 0)
    if value is None:
        value = 0
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        raise errors.bad_request(
            f'{KIND} in version "{VERSION}" cannot be handled as a {KIND}: spec.replicas: '
            f"expected an int32, got {value!r}"
        )
    if value < 0:
        raise errors.invalid(
            KIND,
            GROUP,
            name,
            [
                (
                    "FieldValueInvalid",
                    "spec.replicas",
                    f"Invalid value: {value}: must be greater than or equal to 0",
                )
            ],
        )
    return value


async def serve(
    ctx: context.ApiContext, request: web.Request, t: routing.Target, verb: str, user: seams.UserInfo
) -> web.StreamResponse:
    rt = t.rt
    assert rt is not None
    out = representation.wanted(request)
    if verb == "get":
        obj = ctx.store.peek(rt.key, t.namespace, t.name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, t.name)
        return representation.one(out, _SCALE_RT, to_scale(rt, obj))
    dry = bool(request.query.getall("dryRun", []))
    if any(v != "All" for v in request.query.getall("dryRun", [])):
        raise errors.bad_request("Invalid dry run value, valid values are: All")
    if verb == "update":
        body: Obj = (await bodies.read_object(request)).value
        return representation.one(out, _SCALE_RT, await _write(ctx, t, user, lambda _old: body, dry, True))
    if verb == "patch":
        dec = await bodies.read_patch(request)
        schema = ctx.schemas.component(SCHEMA)

        def patched(old: Obj) -> Obj:
            return patch.apply(dec.media_type, old, dec.value, ctx.schemas, schema, strategic_allowed=True)

        explicit = writes.patch_names_rv(dec)
        return representation.one(out, _SCALE_RT, await _write(ctx, t, user, patched, dry, explicit))
    raise errors.method_not_allowed()


async def _write(
    ctx: context.ApiContext,
    t: routing.Target,
    user: seams.UserInfo,
    change: Any,
    dry: bool,
    explicit_rv: bool,
) -> Obj:
    """Apply `change` (old Scale -> new Scale) to the parent's spec.replicas; the new Scale.
    `explicit_rv`: the client named metadata.resourceVersion (a precondition, never retried)."""
    rt = t.rt
    assert rt is not None
    for _attempt in range(_RETRIES):
        old = ctx.store.get(rt.key, t.namespace, t.name)
        if old is None:
            raise errors.not_found(rt.plural, rt.group, t.name)
        old_scale = to_scale(rt, old)
        scale = change(copy.deepcopy(old_scale))
        if not isinstance(scale, dict):
            raise errors.bad_request("the body of the request must be an object")
        meta = scale.get("metadata") or {}
        if meta.get("name") not in (None, "", t.name):
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({t.name})"
            )
        replicas = _replicas(scale, t.name)
        old_rv = int(old["metadata"]["resourceVersion"])
        wanted_rv = str(meta.get("resourceVersion") or "") if explicit_rv else ""
        if wanted_rv and wanted_rv != str(old_rv):
            raise errors.conflict(rt.plural, rt.group, t.name)
        scale = await _admit(ctx, rt, t, user, dict(scale, kind=KIND, apiVersion=API_VERSION), old_scale, dry)
        replicas = _replicas(scale, t.name)
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["replicas"] = replicas
        try:
            updated = await ctx.objects.update(rt, new, expected_rv=old_rv, dry_run=dry)
        except errors.ApiError as e:
            if e.code == 409 and e.reason == "Conflict" and not wanted_rv:
                continue  # someone wrote in between: apply the change to the new state
            raise
        return to_scale(rt, updated)
    raise errors.conflict(rt.plural, rt.group, t.name)


async def _admit(
    ctx: context.ApiContext,
    rt: resources.ResourceType,
    t: routing.Target,
    user: seams.UserInfo,
    scale: Obj,
    old_scale: Obj,
    dry: bool,
) -> Obj:
    req = seams.AdmissionRequest(
        "UPDATE",
        rt.group,
        rt.version,
        KIND,
        rt.plural,
        "scale",
        t.namespace,
        t.name,
        user,
        scale,
        old_scale,
        dry,
        kind_group=GROUP,
        kind_version=VERSION,
    )
    try:
        mutated = await ctx.admission.mutate(req)
        if mutated is not None:
            scale = mutated
        final = dataclasses.replace(req, obj=scale)
        await ctx.admission.validate(final)
    except seams.AdmissionDenied as e:
        raise errors.ApiError(e.code, str(e)) from e
    return scale
