"""The write verbs: create, update (PUT), patch, delete and deletecollection.

Write pipeline (as the API server's): decode (413/415/400) -> kind/name checks -> field validation
(fieldValidation) -> defaults -> mutating admission -> required-field validation (422) ->
validating admission -> store (all or nothing). dryRun=All runs everything but the store write.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from meshplane.devcluster import errors, seams
from meshplane.devcluster.api import (
    bodies,
    context,
    fieldmanager,
    patch,
    reads,
    representation,
    responses,
    routing,
)
from meshplane.devcluster.controllers import objects
from meshplane.devcluster.schema import conversion, defaults, resources, validation
from meshplane.runtime.jsonobj import Obj


def dry_run(request: web.BaseRequest) -> bool:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise errors.bad_request(f'Invalid dry run value: "{v}", valid values are: All')
    return bool(values)


def _manager(request: web.BaseRequest, *, apply: bool = False) -> tuple[str, bool]:
    """The write's field manager (`fieldManager`, else the User-Agent's prefix; required for apply)
    and `force` (apply only), checked as kube-apiserver checks Patch/UpdateOptions."""
    given = request.query.get("fieldManager")
    force_raw = request.query.get("force")
    if force_raw not in (None, "true", "false"):
        raise errors.bad_request(f'force: Invalid value: "{force_raw}": must be true or false')
    force = force_raw == "true"
    if apply or given is not None or force:
        fieldmanager.check_manager(given or "", apply=apply, force=force)
    name = given or fieldmanager.default_manager(request.headers.get("User-Agent", ""))
    return name, force


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


async def create(
    ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target, user: seams.UserInfo
) -> web.StreamResponse:
    rt = _rt(t)
    out = representation.wanted(request)
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
    defaults.apply(rt.plural, rt.group, obj, None, ctx.clock.wall())
    _requester(rt, obj, user)
    fieldmanager.FieldManager(ctx.schemas, rt, "").update(None, obj, _manager(request)[0], ctx.clock.wall())
    obj = await _admit(ctx, _admission_request("CREATE", rt, t, user, obj, None, dry), rt, obj)
    obj = conversion.to_storage(rt.key, rt.api_version, obj)
    created = await ctx.objects.create(rt, obj, dry_run=dry)
    return representation.one(out, rt, created, 201, warnings)


def _requester(rt: resources.ResourceType, obj: Obj, user: seams.UserInfo) -> None:
    """A new CertificateSigningRequest names who asked, whatever the body says, and starts with no
    status (k8s.io/kubernetes pkg/registry/certificates/certificates/strategy.go PrepareForCreate)."""
    if rt.key != "certificates.k8s.io/certificatesigningrequests":
        return
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    for k in ("username", "uid", "groups", "extra"):
        spec.pop(k, None)
    spec["username"] = user.username
    if user.uid:
        spec["uid"] = user.uid
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}
    obj["status"] = {}


def _merge_status(rt: resources.ResourceType, sub: str, old: Obj, new: Obj) -> Obj:
    """Status writes change only status; main writes leave status alone (when it is a subresource)."""
    if sub in ("status", "approval"):  # approval: a CSR's conditions live in its status
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
    out = representation.wanted(request)
    dry = dry_run(request)
    mode = validation.parse_mode(request.query.get("fieldValidation"))
    dec = await bodies.read_object(request)
    body: Obj = dec.value
    _check_body(rt, t, body, creating=False)
    warnings = validation.check_fields(ctx.schemas, rt, body, mode, dec.duplicates)
    expected = _rv_of(body)
    stored = ctx.store.get(rt.key, t.namespace, t.name)
    if stored is None:
        raise errors.not_found(rt.plural, rt.group, t.name)
    old = responses.present(rt, stored)
    new = _merge_status(rt, t.subresource, old, body)
    _keep_system_meta(old, new)
    defaults.apply(rt.plural, rt.group, new, old, ctx.clock.wall())
    fm = fieldmanager.FieldManager(ctx.schemas, rt, t.subresource)
    fm.update(old, new, _manager(request)[0], ctx.clock.wall())
    new = await _admit(ctx, _admission_request("UPDATE", rt, t, user, new, old, dry), rt, new)
    new = conversion.to_storage(rt.key, rt.api_version, new)
    updated = await ctx.objects.update(rt, new, expected_rv=expected, dry_run=dry)
    return representation.one(out, rt, updated, 200, warnings)


async def patch_(
    ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target, user: seams.UserInfo
) -> web.StreamResponse:
    rt = _rt(t)
    out = representation.wanted(request)
    dry = dry_run(request)
    mode = validation.parse_mode(request.query.get("fieldValidation"))
    dec = await bodies.read_patch(request)
    applying = dec.media_type == bodies.APPLY_PATCH
    manager, force = _manager(request, apply=applying)
    fm = fieldmanager.FieldManager(ctx.schemas, rt, t.subresource)
    schema = ctx.schemas.component(rt.schema_name) if rt.schema_name else None
    if applying and isinstance(dec.value, dict) and isinstance(dec.value.get("metadata"), dict):
        dec.value["metadata"].pop("managedFields", None)
    for _attempt in range(8):
        stored = ctx.store.get(rt.key, t.namespace, t.name)
        if stored is None:
            if applying and not t.subresource:
                return await _apply_create(ctx, t, user, dec, mode, dry, out, fm, manager)
            raise errors.not_found(rt.plural, rt.group, t.name)
        old = responses.present(rt, stored)
        patched = patch.apply(
            dec.media_type, old, dec.value, ctx.schemas, schema, strategic_allowed=not rt.crd
        )
        if applying:
            patched = fm.apply(old, dec.value, manager, force, ctx.clock.wall(), patched)
        _check_body(rt, t, patched, creating=False)
        warnings = validation.check_fields(ctx.schemas, rt, patched, mode, dec.duplicates)
        requested = _rv_of(patched)
        old_rv = int(old["metadata"]["resourceVersion"])
        if requested is not None and requested != old_rv:
            raise errors.conflict(rt.plural, rt.group, t.name)
        new = _merge_status(rt, t.subresource, old, patched)
        _keep_system_meta(old, new)
        defaults.apply(rt.plural, rt.group, new, old, ctx.clock.wall())
        if not applying:
            fm.update(old, new, manager, ctx.clock.wall())
        new = await _admit(ctx, _admission_request("UPDATE", rt, t, user, new, old, dry), rt, new)
        new = conversion.to_storage(rt.key, rt.api_version, new)
        try:
            updated = await ctx.objects.update(rt, new, expected_rv=old_rv, dry_run=dry)
        except errors.ApiError as e:
            if e.code == 409 and e.reason == "Conflict" and not patch_names_rv(dec):
                continue  # someone wrote in between: re-apply the patch to the new state
            raise
        return representation.one(out, rt, updated, 200, warnings)
    raise errors.conflict(rt.plural, rt.group, t.name)


def patch_names_rv(dec: bodies.Decoded) -> bool:
    """Whether the patch itself sets metadata.resourceVersion (then it is a precondition)."""
    if isinstance(dec.value, list):
        return any(isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" for op in dec.value)
    meta = dec.value.get("metadata") if isinstance(dec.value, dict) else None
    return isinstance(meta, dict) and meta.get("resourceVersion") not in (None, "")


async def _apply_create(
    ctx: context.ApiContext,
    t: routing.Target,
    user: seams.UserInfo,
    dec: bodies.Decoded,
    mode: str,
    dry: bool,
    out: representation.Output,
    fm: fieldmanager.FieldManager,
    manager: str,
) -> web.StreamResponse:
    rt = _rt(t)
    obj: Obj = copy.deepcopy(dec.value)
    _check_body(rt, t, obj, creating=False)
    warnings = validation.check_fields(ctx.schemas, rt, obj, mode)
    ctx.objects.check_namespace(rt, t.namespace, t.name, creating=True)
    obj = fm.apply(None, dec.value, manager, False, ctx.clock.wall(), obj)
    defaults.apply(rt.plural, rt.group, obj, None, ctx.clock.wall())
    obj = await _admit(ctx, _admission_request("CREATE", rt, t, user, obj, None, dry), rt, obj)
    obj = conversion.to_storage(rt.key, rt.api_version, obj)
    created = await ctx.objects.create(rt, obj, dry_run=dry)
    return representation.one(out, rt, created, 201, warnings)


async def _delete_options(request: web.BaseRequest) -> tuple[objects.DeleteOptions, bool]:
    """DeleteOptions from the query and the (optional) body; the bool is a dryRun in the body."""
    body = await bodies.read_optional_object(request) or {}
    body_dry = body.get("dryRun") or []
    if not isinstance(body_dry, list) or any(v != "All" for v in body_dry):
        raise errors.bad_request(f"Invalid dry run value: {body_dry!r}, valid values are: All")
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
    if not isinstance(pre, dict):
        raise errors.bad_request("preconditions must be an object")
    try:
        grace_i = int(grace) if grace is not None else None
        rv = int(pre["resourceVersion"]) if pre.get("resourceVersion") else None
    except (TypeError, ValueError) as e:
        raise errors.bad_request(f"invalid delete options: {e}") from e
    if grace_i is not None and grace_i < 0:
        raise errors.bad_request("gracePeriodSeconds must be >= 0")
    return objects.DeleteOptions(grace_i, policy, pre.get("uid"), rv), bool(body_dry)


async def delete(
    ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target, user: seams.UserInfo
) -> web.StreamResponse:
    rt = _rt(t)
    out = representation.wanted(request)
    opts, body_dry = await _delete_options(request)
    dry = dry_run(request) or body_dry
    old = ctx.store.peek(rt.key, t.namespace, t.name)
    if old is None:
        raise errors.not_found(rt.plural, rt.group, t.name)
    try:
        await ctx.admission.validate(_admission_request("DELETE", rt, t, user, None, copy.deepcopy(old), dry))
    except seams.AdmissionDenied as e:
        raise errors.ApiError(e.code, str(e)) from e
    obj, _gone = await ctx.objects.delete(rt, t.namespace, t.name, opts, dry_run=dry)
    return representation.one(out, rt, obj, 200)


async def delete_collection(
    ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target, user: seams.UserInfo
) -> web.StreamResponse:
    rt = _rt(t)
    out = representation.wanted(request)
    match = reads.filters(request, rt, t)
    opts, body_dry = await _delete_options(request)
    dry = dry_run(request) or body_dry
    ns = t.namespace if rt.namespaced and t.namespace else None
    targets = [copy.deepcopy(o) for o in ctx.store.items(rt.key, ns) if match(o)]
    for old in targets:
        one = routing.Target(
            t.group,
            t.version,
            t.plural,
            old["metadata"].get("namespace", "") or "",
            old["metadata"]["name"],
            "",
            rt,
        )
        try:
            await ctx.admission.validate(_admission_request("DELETE", rt, one, user, None, old, dry))
        except seams.AdmissionDenied as e:
            raise errors.ApiError(e.code, str(e)) from e
    done = await ctx.objects.delete_collection(rt, targets, opts, dry_run=dry)
    return representation.many(out, rt, done, {"resourceVersion": str(ctx.store.rv)})
