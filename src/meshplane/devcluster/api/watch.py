"""Watch streams: chunked JSON lines `{"type": ..., "object": ...}` as the Kubernetes API sends them
(or length-prefixed protobuf WatchEvent frames for PartialObjectMetadata; see `representation`).

Start points: resourceVersion unset or "0" -> synthetic ADDED for the current objects, then changes;
n -> every change after n in order (an ERROR event with a 410 Expired Status when n is older than
the kept history). Optional BOOKMARK events, timeoutSeconds, sendInitialEvents. The subscription
is closed in `finally`, so a client that disconnects (the handler is cancelled) leaks nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from meshplane.devcluster import errors
from meshplane.devcluster.api import context, reads, representation, routing
from meshplane.devcluster.schema import resources
from meshplane.devcluster.storage import store
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)


def _bookmark(rt: resources.ResourceType, rv: int, initial_end: bool = False) -> Obj:
    meta: Obj = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}


def _translate(ev: store.Event, match: Any) -> str | None:
    """The event type this watcher sees: objects moving in/out of its selector become ADDED/DELETED."""
    now = match(ev.obj)
    if ev.type == store.MODIFIED:
        before = match(ev.old) if ev.old is not None else False
        if now and before:
            return store.MODIFIED
        if now:
            return store.ADDED
        if before:
            return store.DELETED
        return None
    return ev.type if now else None


async def serve(ctx: context.ApiContext, request: web.BaseRequest, t: routing.Target) -> web.StreamResponse:
    assert t.rt is not None
    rt = t.rt
    q = request.query
    match = reads.filters(request, rt, t)
    if t.name:
        base = match

        def match(o: Obj) -> bool:
            return bool(o["metadata"]["name"] == t.name and base(o))

    try:
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else ctx.settings.watch_timeout
    except ValueError as e:
        raise errors.bad_request(f"invalid timeoutSeconds {q['timeoutSeconds']!r}") from e
    bookmarks = q.get("allowWatchBookmarks", "") in ("true", "1")
    send_initial = q.get("sendInitialEvents", "") == "true"
    rv_param = q.get("resourceVersion", "")
    try:
        since = int(rv_param) if rv_param not in ("", "0") else None
    except ValueError as e:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{rv_param}": must be an integer') from e

    encode = representation.WatchEncoder(rt, representation.wanted(request, stream=True), ctx.watch_lines)
    if since is not None and since > ctx.store.rv:
        raise errors.ApiError(504, f"Too large resource version: {since}, current: {ctx.store.rv}", "Timeout")
    sub = ctx.store.subscribe({rt.key})
    initial: list[bytes] = []
    expired: errors.ApiError | None = None
    try:
        if since is None or send_initial:
            initial = [
                encode(store.ADDED, o) for o in ctx.store.items(rt.key, t.namespace or None) if match(o)
            ]
            start_rv = ctx.store.rv
            if send_initial:
                initial.append(encode("BOOKMARK", _bookmark(rt, start_rv, initial_end=True)))
        else:
            try:
                backlog = ctx.store.history_since(since)
            except errors.ApiError as e:
                expired = e
                backlog = []
            for ev in backlog:
                if ev.key != rt.key:
                    continue  # the history holds every kind; this watch wants one
                etype = _translate(ev, match)
                if etype is not None:
                    initial.append(encode(etype, ev.obj))
            start_rv = ctx.store.rv
    except BaseException:
        sub.close()
        raise

    resp = web.StreamResponse(status=200, headers={"Content-Type": encode.content_type})
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        if expired is not None:
            await resp.write(encode.error(expired.status()))
            return resp
        for chunk in initial:
            await resp.write(chunk)
        await _pump(ctx, resp, sub, rt, match, start_rv, timeout, bookmarks, encode)
    except (ConnectionResetError, asyncio.CancelledError):
        log.debug("watch closed by client cluster=%s resource=%s", ctx.settings.name, rt.key)
        raise
    finally:
        sub.close()
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


async def _pump(
    ctx: context.ApiContext,
    resp: web.StreamResponse,
    sub: store.Subscription,
    rt: resources.ResourceType,
    match: Any,
    start_rv: int,
    duration: float,
    bookmarks: bool,
    encode: representation.WatchEncoder,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    interval = ctx.settings.bookmark_interval
    next_bookmark = loop.time() + interval
    while True:
        now = loop.time()
        if now >= deadline:
            return
        wait = deadline - now
        if bookmarks:
            wait = min(wait, max(0.0, next_bookmark - now))
        try:
            ev = await asyncio.wait_for(sub.get(), timeout=wait)
        except TimeoutError:
            if bookmarks and loop.time() >= next_bookmark:
                if sub.queue.empty():
                    await resp.write(encode("BOOKMARK", _bookmark(rt, ctx.store.rv)))
                next_bookmark = loop.time() + interval
            continue
        if ev is None:
            return  # closed (store shutting down, or this watcher fell too far behind)
        if ev.rv <= start_rv:
            continue
        etype = _translate(ev, match)
        if etype is not None:
            await resp.write(encode(etype, ev.obj))
