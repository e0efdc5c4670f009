"""The resource verbs: get, list, create, update, patch, delete, deletecollection.

Write pipeline (as the API server's): decode (413/415/400) -> kind/name checks -> field validation
(fieldValidation) -> defaults -> mutating admission -> required-field validation (422) ->
validating admission -> store (all or nothing). dryRun=All runs everything but the store write.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

from aiohttp import web

from meshplane.devcluster import (
    bodies,
    context,
    defaults,
    errors,
    objects,
    patch,
    resources,
    routing,
    seams,
    selectors,
    tables,
    validation,
)

Obj = dict[str, Any]
JSON_HEADERS = {"Content-Type": "application/json"}


def respond(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = dict(JSON_HEADERS)
    resp = web.Response(body=bodies.dumps(obj), status=status, headers=headers)
    for w in warnings or []:
        # json.dumps quotes and escapes (control characters too), as a header value must be
        resp.headers.add("Warning", "299 - " + json.dumps(w))
    return resp


def present(rt: resources.ResourceType, obj: Obj) -> Obj:
    """The object as the requested version shows it (CRD versions share storage)."""
    if obj.get("apiVersion") != rt.api_version:
        obj = dict(obj, apiVersion=rt.api_version)
    return obj


def dry_run(request: web.BaseRequest) -> bool:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise errors.bad_request(f'Invalid dry run value: "{v}", valid values are: All')
    return bool(values)


def _rt(t: routing.Target) -> resources.ResourceType:
    assert t.rt is not None
    return t.rt


def _check_body(rt: resources.ResourceType, t: routing.Target, obj: Obj, *, creating: bool) -> None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version not in (None, "") and api_version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({rt.api_version})"
        )
    if kind not in (None, "") and kind != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: metadata: expected object'
        )
    if rt.namespaced:
        ns = meta.get("namespace")
        if ns not in (None, "") and ns != t.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = t.namespace
    if not creating and meta.get("name") not in (None, "") and meta.get("name") != t.name:
        raise errors.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL ({t.name})"
        )
    if not creating:
        meta["name"] = t.name


def _admission_request(
    op: str,
    rt: resources.ResourceType,
    t: routing.Target,
    user: seams.UserInfo,
    obj: Obj | None,
    old: Obj | None,
    dry: bool,
) -> seams.AdmissionRequest:
    meta = (obj or old or {}).get("metadata") or {}
    return seams.AdmissionRequest(
        op,
        rt.group,
        rt.version,
        rt.kind,
        rt.plural,
        t.subresource,
        t.namespace,
        meta.get("name", "") or t.name,
        user,
        obj,
        old,
        dry,
    )


async def _admit(
    ctx: context.ApiContext, req: seams.AdmissionRequest, rt: resources.ResourceType, obj: Obj
) -> Obj:
    try:
        mutated = await ctx.admission.mutate(req)
        if mutated is not None and mutated is not obj:
            validation.check_fields(ctx.schemas, rt, mutated, validation.IGNORE)
            obj = mutated
        validation.check_required(ctx.schemas, rt, obj)
        final = seams.AdmissionRequest(
            req.operation,
            req.api_group,
            req.api_version,
            req.kind,
            req.resource,
            req.subresource,
            req.namespace,
            req.name,
            req.user,
            obj,
            req.old_obj,
            req.dry_run,
        )
        await ctx.admission.validate(final)
    except seams.AdmissionDenied as e:
        raise errors.ApiError(e.code, str(e)) from e
    return obj


# reads


async def get(ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target) -> web.StreamResponse:
    rt = _rt(t)
    obj = ctx.store.peek(rt.key, t.namespace, t.name)
    if obj is None:
        raise errors.not_found(rt.plural, rt.group, t.name)
    obj = present(rt, obj)
    if tables.wants_table(request):
        return respond(tables.table(rt, [obj], str(obj["metadata"]["resourceVersion"]), ""))
    return respond(obj)


def filters(request: web.BaseRequest, rt: resources.ResourceType, t: routing.Target) -> Any:
    labels = selectors.parse_label_selector(request.query.get("labelSelector", ""))
    fields = selectors.parse_field_selector(request.query.get("fieldSelector", ""), rt.plural)
    ns = t.namespace if rt.namespaced and t.namespace else None

    def match(obj: Obj) -> bool:
        m = obj["metadata"]
        if ns is not None and m.get("namespace") != ns:
            return False
        return selectors.labels_match(labels, m.get("labels")) and selectors.fields_match(fields, obj)

    return match


def _encode_continue(rv: int, last: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": last}).encode()).decode()


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise errors.bad_request(f"continue key is not valid: {e}") from e


async def list_(ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target) -> web.StreamResponse:
    rt = _rt(t)
    match = filters(request, rt, t)
    q = request.query
    limit_s = q.get("limit", "")
    try:
        limit = int(limit_s) if limit_s else 0
    except ValueError as e:
        raise errors.bad_request(f"invalid limit {limit_s!r}") from e
    list_rv = ctx.store.rv
    start = ""
    token = q.get("continue", "")
    if token:
        list_rv, start = _decode_continue(token)
        if list_rv < ctx.store.floor:
            raise errors.ApiError(
                410,
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter.",
                "Expired",
            )
    else:
        rv_param, rv_match = q.get("resourceVersion", ""), q.get("resourceVersionMatch", "")
        _check_list_rv(ctx, rv_param, rv_match)
    ns = t.namespace if rt.namespaced and t.namespace else None
    items: list[Obj] = []
    more = 0
    last = ""
    for obj in ctx.store.items(rt.key, ns):
        m = obj["metadata"]
        pos = f"{m.get('namespace', '')}/{m['name']}"
        if start and pos <= start:
            continue
        if not match(obj):
            continue
        if limit and len(items) >= limit:
            more += 1
            continue
        items.append(present(rt, obj))
        last = pos
    meta: Obj = {"resourceVersion": str(list_rv)}
    if more:
        meta["continue"] = _encode_continue(list_rv, last)
        meta["remainingItemCount"] = more
    if tables.wants_table(request):
        return respond(tables.table(rt, items, str(list_rv), meta.get("continue", "")))
    return respond({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items})


def _check_list_rv(ctx: context.ApiContext, rv_param: str, rv_match: str) -> None:
    if rv_match and rv_match not in ("Exact", "NotOlderThan"):
        raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{rv_match}"')
    if not rv_param:
        if rv_match:
            raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
        return
    try:
        rv = int(rv_param)
    except ValueError as e:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{rv_param}": must be an integer') from e
    if rv_match == "Exact" and rv != ctx.store.rv:
        if rv < ctx.store.rv:
            raise errors.expired(f"too old resource version: {rv} ({ctx.store.rv})")
        raise errors.ApiError(504, f"Too large resource version: {rv}, current: {ctx.store.rv}", "Timeout")
    if rv > ctx.store.rv:
        raise errors.ApiError(504, f"Too large resource version: {rv}, current: {ctx.store.rv}", "Timeout")


# writes


async def create(
    ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target, user: seams.UserInfo
) -> web.StreamResponse:
    rt = _rt(t)
    dry = dry_run(request)
    mode = validation.parse_mode(request.query.get("fieldValidation"))
    dec = await bodies.read_object(request)
    obj: Obj = dec.value
    _check_body(rt, t, obj, creating=True)
    warnings = validation.check_fields(ctx.schemas, rt, obj, mode, dec.duplicates)
    meta = obj["metadata"]
    ctx.objects.check_namespace(
        rt, t.namespace, meta.get("name") or meta.get("generateName") or "", creating=True
    )
    defaults.apply(rt.plural, rt.group, obj, None)
    obj = await _admit(ctx, _admission_request("CREATE", rt, t, user, obj, None, dry), rt, obj)
    created = await ctx.objects.create(rt, obj, dry_run=dry)
    return respond(present(rt, created), 201, warnings)


def _merge_status(rt: resources.ResourceType, sub: str, old: Obj, new: Obj) -> Obj:
    """Status writes change only status; main writes leave status alone (when it is a subresource)."""
    if sub == "status":
        out = copy.deepcopy(old)
        if "status" in new:
            out["status"] = new["status"]
        else:
            out.pop("status", None)
        out["metadata"] = dict(out["metadata"])
        return out
    if rt.has_status:
        new = dict(new)
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    return new


def _keep_system_meta(old: Obj, new: Obj) -> None:
    m, om = new["metadata"], old["metadata"]
    for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
        if k in om:
            m[k] = om[k]
        else:
            m.pop(k, None)


def _rv_of(obj: Obj) -> int | None:
    raw = (obj.get("metadata") or {}).get("resourceVersion")
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError) as e:
        raise errors.bad_request(
            f'metadata.resourceVersion: Invalid value: "{raw}": must be an integer'
        ) from e


async def update(
    ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target, user: seams.UserInfo
) -> web.StreamResponse:
    rt = _rt(t)
    dry = dry_run(request)
    mode = validation.parse_mode(request.query.get("fieldValidation"))
    dec = await bodies.read_object(request)
    body: Obj = dec.value
    _check_body(rt, t, body, creating=False)
    warnings = validation.check_fields(ctx.schemas, rt, body, mode, dec.duplicates)
    expected = _rv_of(body)
    old = ctx.store.get(rt.key, t.namespace, t.name)
    if old is None:
        raise errors.not_found(rt.plural, rt.group, t.name)
    new = _merge_status(rt, t.subresource, old, body)
    _keep_system_meta(old, new)
    defaults.apply(rt.plural, rt.group, new, old)
    new = await _admit(ctx, _admission_request("UPDATE", rt, t, user, new, old, dry), rt, new)
    updated = await ctx.objects.update(rt, new, expected_rv=expected, dry_run=dry)
    return respond(present(rt, updated), 200, warnings)


async def patch_(
    ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target, user: seams.UserInfo
) -> web.StreamResponse:
    rt = _rt(t)
    dry = dry_run(request)
    mode = validation.parse_mode(request.query.get("fieldValidation"))
    dec = await bodies.read_patch(request)
    schema = ctx.schemas.component(rt.schema_name) if rt.schema_name else None
    for _attempt in range(8):
        old = ctx.store.get(rt.key, t.namespace, t.name)
        if old is None:
            if dec.media_type == bodies.APPLY_PATCH and not t.subresource:
                return await _apply_create(ctx, t, user, dec, mode, dry)
            raise errors.not_found(rt.plural, rt.group, t.name)
        patched = patch.apply(
            dec.media_type, old, dec.value, ctx.schemas, schema, strategic_allowed=not rt.crd
        )
        _check_body(rt, t, patched, creating=False)
        warnings = validation.check_fields(ctx.schemas, rt, patched, mode, dec.duplicates)
        requested = _rv_of(patched)
        old_rv = int(old["metadata"]["resourceVersion"])
        user_rv = requested if requested is not None and requested != old_rv else None
        if user_rv is not None:
            raise errors.conflict(rt.plural, rt.group, t.name)
        new = _merge_status(rt, t.subresource, old, patched)
        _keep_system_meta(old, new)
        defaults.apply(rt.plural, rt.group, new, old)
        new = await _admit(ctx, _admission_request("UPDATE", rt, t, user, new, old, dry), rt, new)
        try:
            updated = await ctx.objects.update(rt, new, expected_rv=old_rv, dry_run=dry)
        except errors.ApiError as e:
            if e.code == 409 and e.reason == "Conflict" and requested is None:
                continue  # someone wrote in between: re-apply the patch to the new state
            raise
        return respond(present(rt, updated), 200, warnings)
    raise errors.conflict(rt.plural, rt.group, t.name)


async def _apply_create(
    ctx: context.ApiContext,
    t: routing.Target,
    user: seams.UserInfo,
    dec: bodies.Decoded,
    mode: str,
    dry: bool,
) -> web.StreamResponse:
    rt = _rt(t)
    obj: Obj = copy.deepcopy(dec.value)
    _check_body(rt, t, obj, creating=False)
    warnings = validation.check_fields(ctx.schemas, rt, obj, mode)
    ctx.objects.check_namespace(rt, t.namespace, t.name, creating=True)
    defaults.apply(rt.plural, rt.group, obj, None)
    obj = await _admit(ctx, _admission_request("CREATE", rt, t, user, obj, None, dry), rt, obj)
    created = await ctx.objects.create(rt, obj, dry_run=dry)
    return respond(present(rt, created), 201, warnings)


async def _delete_options(request: web.BaseRequest) -> objects.DeleteOptions:
    body = await bodies.read_optional_object(request) or {}
    q = request.query
    grace: Any = q.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
    policy = q.get("propagationPolicy", body.get("propagationPolicy"))
    orphan = q.get("orphanDependents", body.get("orphanDependents"))
    if policy is None and orphan is not None:
        policy = "Orphan" if str(orphan).lower() == "true" else "Background"
    if policy not in (None, "Background", "Foreground", "Orphan"):
        raise errors.bad_request(
            f'propagationPolicy: Unsupported value: "{policy}": supported values: '
            '"Foreground", "Background", "Orphan"'
        )
    pre = body.get("preconditions") or {}
    try:
        grace_i = int(grace) if grace is not None else None
        rv = int(pre["resourceVersion"]) if pre.get("resourceVersion") else None
    except (TypeError, ValueError) as e:
        raise errors.bad_request(f"invalid delete options: {e}") from e
    if grace_i is not None and grace_i < 0:
        raise errors.bad_request("gracePeriodSeconds must be >= 0")
    return objects.DeleteOptions(grace_i, policy, pre.get("uid"), rv)


async def delete(
    ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target, user: seams.UserInfo
) -> web.StreamResponse:
    rt = _rt(t)
    dry = dry_run(request)
    opts = await _delete_options(request)
    old = ctx.store.peek(rt.key, t.namespace, t.name)
    if old is None:
        raise errors.not_found(rt.plural, rt.group, t.name)
    try:
        await ctx.admission.validate(_admission_request("DELETE", rt, t, user, None, copy.deepcopy(old), dry))
    except seams.AdmissionDenied as e:
        raise errors.ApiError(e.code, str(e)) from e
    obj, _gone = await ctx.objects.delete(rt, t.namespace, t.name, opts, dry_run=dry)
    return respond(present(rt, obj), 200)


async def delete_collection(
    ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target, user: seams.UserInfo
) -> web.StreamResponse:
    rt = _rt(t)
    dry = dry_run(request)
    match = filters(request, rt, t)
    opts = await _delete_options(request)
    ns = t.namespace if rt.namespaced and t.namespace else None
    targets = [copy.deepcopy(o) for o in ctx.store.items(rt.key, ns) if match(o)]
    done = await ctx.objects.delete_collection(rt, targets, opts, dry_run=dry)
    return respond(
        {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(ctx.store.rv)},
            "items": [present(rt, o) for o in done],
        }
    )
