"""Request dispatch: authentication, authorization, then the verb handler; errors become Status."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from meshplane.devcluster import errors, seams
from meshplane.devcluster.api import (
    bodies,
    context,
    discovery,
    openapi,
    openapi_pb,
    podstreams,
    reads,
    responses,
    routing,
    scale,
    watch,
    writes,
)
from meshplane.devcluster.schema import resources
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

_PUBLIC = ("/healthz", "/livez", "/readyz", "/version")


def _bearer(request: web.BaseRequest) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def _verb(method: str, t: routing.Target, request: web.BaseRequest) -> str:
    watching = t.legacy_watch or request.query.get("watch", "") in ("true", "1")
    if method == "GET":
        if watching:
            return "watch"
        return "get" if t.name else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if t.name else "deletecollection",
    }.get(method, "")


def forbidden_message(attrs: seams.RequestAttributes, reason: str) -> str:
    u = attrs.user.username
    if not attrs.resource_request:
        msg = f'forbidden: User "{u}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        res = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        what = errors.qualified(attrs.resource, attrs.api_group)  # the subject names no subresource
        subject = f'{what} "{attrs.name}"' if attrs.name else what
        scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        msg = (
            f'{subject} is forbidden: User "{u}" cannot {attrs.verb} resource "{res}" in API group '
            f'"{attrs.api_group}" {scope}'
        )
    return f"{msg}: {reason}" if reason else msg


class Dispatcher:
    def __init__(self, ctx: context.ApiContext, oapi: openapi.OpenApi, server_address: str) -> None:
        self.ctx = ctx
        self.oapi = oapi
        self.server_address = server_address

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except errors.ApiError as e:
            if e.code >= 500:
                log.error(
                    "request failed cluster=%s path=%s error=%s", self.ctx.settings.name, request.path, e
                )
            return responses.respond(e.status(), e.code)
        except asyncio.CancelledError:
            raise
        except ConnectionResetError:
            raise
        except Exception as e:  # a bug must answer 500, never kill the server
            log.exception(
                "internal error cluster=%s method=%s path=%s",
                self.ctx.settings.name,
                request.method,
                request.path,
            )
            err = errors.ApiError(500, f"Internal error occurred: {type(e).__name__}: {e}", "InternalError")
            return responses.respond(err.status(), 500)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in _PUBLIC:
            return self._public(path)
        user = await self.ctx.authenticator.authenticate(_bearer(request))
        if user is None:
            raise errors.ApiError(401, "Unauthorized", "Unauthorized")
        _refuse_impersonation(request, user)
        t = routing.parse(path, self.ctx.registry)
        if t is None:
            await self._authorize(
                seams.RequestAttributes(
                    user,
                    request.method.lower() if request.method != "GET" else "get",
                    "",
                    "",
                    "",
                    path=path,
                    resource_request=False,
                )
            )
            return await self._non_resource(request, path)
        assert t.rt is not None
        verb = podstreams.verb(t, _verb(request.method, t, request))
        if not verb:
            raise errors.method_not_allowed()
        await self._authorize(
            seams.RequestAttributes(
                user, verb, t.group, t.version, t.plural, t.subresource, t.namespace, t.name
            )
        )
        return await self._resource(request, t, verb, user)

    async def _authorize(self, attrs: seams.RequestAttributes) -> None:
        allowed, reason = await self.ctx.authorizer.authorize(attrs)
        if not allowed:
            raise errors.forbidden(
                attrs.resource, attrs.api_group, attrs.name, forbidden_message(attrs, reason)
            )

    async def _resource(
        self, request: web.Request, t: routing.Target, verb: str, user: seams.UserInfo
    ) -> web.StreamResponse:
        rt = t.rt
        assert rt is not None
        ctx = self.ctx
        if podstreams.served(t):
            return await podstreams.serve(ctx, request, t)
        extra = ctx.registry.extra(t.group, t.plural, t.subresource)
        if extra is not None and (t.subresource or not rt.storage):
            if verb not in extra.verbs:
                raise errors.method_not_allowed()
            return await self._extra(request, t, extra, user)
        if verb not in rt.verbs or (verb in ("update", "patch") and not t.name):
            raise errors.method_not_allowed()
        if t.subresource and verb not in ("get", "update", "patch"):
            raise errors.method_not_allowed()
        if rt.namespaced and not t.namespace and verb not in ("list", "watch"):
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource (a namespace is required)"
            )
        if t.subresource == "scale":
            return await scale.serve(ctx, request, t, verb, user)
        if verb == "watch":
            return await watch.serve(ctx, request, t)
        if verb == "get":
            return await reads.get(ctx, request, t)
        if verb == "list":
            return await reads.list_(ctx, request, t)
        if verb == "create":
            if t.name:
                raise errors.method_not_allowed()
            return await writes.create(ctx, request, t, user)
        if verb == "update":
            return await writes.update(ctx, request, t, user)
        if verb == "patch":
            return await writes.patch_(ctx, request, t, user)
        if verb == "delete":
            if t.subresource:
                raise errors.method_not_allowed()
            return await writes.delete(ctx, request, t, user)
        if verb == "deletecollection":
            return await writes.delete_collection(ctx, request, t, user)
        raise errors.method_not_allowed()

    async def _extra(
        self, request: web.Request, t: routing.Target, extra: Any, user: seams.UserInfo
    ) -> web.StreamResponse:
        assert t.rt is not None
        dec = await bodies.read_object(request)
        dry = writes.dry_run(request)
        if t.subresource and t.rt.storage and self.ctx.store.peek(t.rt.key, t.namespace, t.name) is None:
            raise errors.not_found(t.rt.plural, t.rt.group, t.name)
        req = resources.HandlerRequest(
            t.rt, t.subresource, t.namespace, t.name, user, dec.value, dict(request.query), dry
        )
        code, obj = await extra.handler(req)
        return responses.respond(obj, code)

    def _public(self, path: str) -> web.StreamResponse:
        if path == "/version":
            return responses.respond(discovery.version_info(self.ctx.settings.git_version))
        return web.Response(text="ok", content_type="text/plain")

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        """Swagger 2.0 in JSON or gnostic protobuf, one ETag for both; If-None-Match -> 304."""
        snap = self.oapi.snapshot()
        pb = _wants_protobuf(request.headers.get("Accept", ""))
        try:
            raw, etag = await asyncio.to_thread(
                self.oapi.document_v2_pb if pb else self.oapi.document_v2, snap
            )
        except openapi_pb.EncodeError as e:
            log.error("/openapi/v2 protobuf: %s", e)
            raise errors.ApiError(500, f"encoding /openapi/v2 as protobuf: {e}", "InternalError") from e
        headers = {"ETag": etag, "Vary": "Accept"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = openapi_pb.MIME if pb else "application/json"
        return web.Response(body=raw, headers=headers)

    async def _non_resource(self, request: web.Request, path: str) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.method_not_allowed()
        reg = self.ctx.registry
        parts = [p for p in path.split("/") if p]
        if path == "/api":
            if discovery.wants_aggregated(request):
                return _aggregated(discovery.aggregated(reg, core=True))
            return responses.respond(discovery.api_versions(self.server_address))
        if path == "/apis":
            if discovery.wants_aggregated(request):
                return _aggregated(discovery.aggregated(reg, core=False))
            return responses.respond(discovery.api_group_list(reg))
        if path == "/api/v1":
            doc = discovery.resource_list(reg, "", "v1")
            if doc is not None:
                return responses.respond(doc)
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(reg, parts[1])
            if doc is not None:
                return responses.respond(doc)
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.resource_list(reg, parts[1], parts[2])
            if doc is not None:
                return responses.respond(doc)
        elif path == "/openapi/v2":
            return await self._openapi_v2(request)
        elif path == "/openapi/v3":
            index = await asyncio.to_thread(self.oapi.index, self.oapi.snapshot())
            return responses.respond(index)
        elif len(parts) >= 4 and parts[:2] == ["openapi", "v3"]:
            group, version = (
                ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4] if len(parts) > 4 else "")
            )
            found = await asyncio.to_thread(self.oapi.document, self.oapi.snapshot(), group, version)
            if found is not None:
                raw, digest = found
                headers = {"Content-Type": "application/json"}
                if request.query.get("hash") == digest:
                    headers["Cache-Control"] = "public, immutable"
                return web.Response(body=raw, headers=headers)
        raise errors.ApiError(404, f"the server could not find the requested resource ({path})", "NotFound")


def _wants_protobuf(accept: str) -> bool:
    """True when the gnostic protobuf is named before JSON in Accept (client-go names only it)."""
    kinds = [part.split(";")[0].strip() for part in accept.split(",")]
    for k in kinds:
        if k in openapi_pb.ACCEPTED:
            return True
        if k in ("application/json", "application/*", "*/*"):
            return False
    return False


def _aggregated(doc: Obj) -> web.Response:
    return web.Response(
        body=bodies.dumps(doc), headers={"Content-Type": discovery.AGGREGATED, "Vary": "Accept"}
    )


def _refuse_impersonation(request: web.Request, user: seams.UserInfo) -> None:
    """The dev cluster does not implement impersonation (`kubectl --as`, `Impersonate-*` headers):
    the request is refused naming the header, never run as the caller instead (k8s.io/apiserver
    pkg/endpoints/filters/impersonation.go would check the `impersonate` verb and switch users)."""
    headers = sorted({h for h in request.headers if h.lower().startswith("impersonate-")})
    if headers:
        raise errors.forbidden(
            "users",
            "",
            request.headers.get("Impersonate-User", ""),
            f'user "{user.username}" cannot impersonate: the dev cluster does not support impersonation '
            f"({', '.join(headers)})",
        )
