"""The read verbs: get and list (selectors, limit/continue paging, resourceVersion rules)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from meshplane.devcluster import errors
from meshplane.devcluster.api import context, representation, routing, selectors
from meshplane.devcluster.schema import resources
from meshplane.runtime.jsonobj import Obj


def _rt(t: routing.Target) -> resources.ResourceType:
    assert t.rt is not None
    return t.rt


async def get(ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target) -> web.StreamResponse:
    rt = _rt(t)
    out = representation.wanted(request)
    obj = ctx.store.peek(rt.key, t.namespace, t.name)
    if obj is None:
        raise errors.not_found(rt.plural, rt.group, t.name)
    return representation.one(out, rt, obj)


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


def _encode_continue(rv: int, last: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(last)}).encode()).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str] | None]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        ns, name = data["start"]
        return int(data["rv"]), (str(ns), str(name))
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise errors.bad_request(f"continue key is not valid: {e}") from e


async def list_(ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target) -> web.StreamResponse:
    rt = _rt(t)
    out = representation.wanted(request)
    match = filters(request, rt, t)
    q = request.query
    limit_s = q.get("limit", "")
    try:
        limit = int(limit_s) if limit_s else 0
    except ValueError as e:
        raise errors.bad_request(f"invalid limit {limit_s!r}") from e
    list_rv = ctx.store.rv
    start: tuple[str, str] | None = None
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
    last = ("", "")
    for obj in ctx.store.items(rt.key, ns):
        m = obj["metadata"]
        pos = (m.get("namespace", "") or "", m["name"])  # the order store.items() yields
        if start is not None and pos <= start:
            continue
        if not match(obj):
            continue
        if limit and len(items) >= limit:
            more += 1
            continue
        items.append(obj)
        last = pos
    meta: Obj = {"resourceVersion": str(list_rv)}
    if more:
        meta["continue"] = _encode_continue(list_rv, last)
        meta["remainingItemCount"] = more
    return representation.many(out, rt, items, meta)


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
