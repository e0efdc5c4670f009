"""Writing objects, lists and watch events in the representation `negotiation` chose: the object
itself (JSON or YAML), a meta.k8s.io Table (`tables`), or PartialObjectMetadata[List] (JSON, YAML or
protobuf), as kube-apiserver's transformObject does (k8s.io/apiserver pkg/endpoints/handlers/
response.go: asPartialObjectMetadata, asPartialObjectMetadataList, asTable)."""

from __future__ import annotations

import yaml
from aiohttp import web

from meshplane.devcluster import errors
from meshplane.devcluster.api import bodies, negotiation, protobuf, responses, tables, watchlines
from meshplane.devcluster.schema import resources
from meshplane.runtime.jsonobj import Obj

N = negotiation
Output = negotiation.Output


def wanted(request: web.BaseRequest, *, stream: bool = False) -> negotiation.Output:
    return negotiation.negotiate(request.headers.get("Accept", ""), stream=stream)


def partial(obj: Obj, version: str) -> Obj:
    """An object as meta.k8s.io PartialObjectMetadata: its type and metadata only."""
    return {
        "kind": N.PARTIAL,
        "apiVersion": f"{N.META_GROUP}/{version}",
        "metadata": obj.get("metadata") or {},
    }


def _encode(out: negotiation.Output, doc: Obj) -> tuple[bytes, str]:
    if out.media_type == N.YAML:
        return yaml.safe_dump(doc, sort_keys=False).encode(), N.YAML
    if out.media_type == N.PROTOBUF:
        kind = str(doc["kind"])
        message = (
            "PartialObjectMetadataListV1beta1" if (kind, out.version) == (N.PARTIAL_LIST, "v1beta1") else ""
        )
        try:
            return protobuf.encode(str(doc["apiVersion"]), kind, doc, message), N.PROTOBUF
        except errors.ProtoError as e:
            raise errors.ApiError(500, f"encoding {kind} as protobuf: {e}", "InternalError") from e
    return bodies.dumps(doc), N.JSON


def _write(out: negotiation.Output, doc: Obj, status: int, warnings: list[str] | None) -> web.Response:
    if out.media_type == N.JSON:
        return responses.respond(doc, status, warnings)
    body, content_type = _encode(out, doc)
    resp = web.Response(body=body, status=status, headers={"Content-Type": content_type})
    responses.add_warnings(resp, warnings)
    return resp


def one(
    out: negotiation.Output,
    rt: resources.ResourceType,
    obj: Obj,
    status: int = 200,
    warnings: list[str] | None = None,
) -> web.Response:
    """One object (get and the writes) as asked."""
    obj = responses.present(rt, obj)
    if out.convert == N.PARTIAL_LIST:
        raise negotiation.not_acceptable(
            message="you requested PartialObjectMetadataList, but the requested object is not a list"
        )
    if out.convert == N.TABLE:
        doc = tables.table(rt, [obj], str(obj["metadata"].get("resourceVersion", "")), "")
    elif out.convert == N.PARTIAL:
        doc = partial(obj, out.version)
    else:
        doc = obj
    return _write(out, doc, status, warnings)


def many(out: negotiation.Output, rt: resources.ResourceType, items: list[Obj], meta: Obj) -> web.Response:
    """A list (list and deletecollection) as asked."""
    items = [responses.present(rt, o) for o in items]
    if out.convert == N.PARTIAL:
        raise negotiation.not_acceptable(
            message="you requested PartialObjectMetadata, but the requested object is a list"
        )
    if out.convert == N.TABLE:
        doc = tables.table(rt, items, str(meta.get("resourceVersion", "")), str(meta.get("continue", "")))
    elif out.convert == N.PARTIAL_LIST:
        doc = {
            "kind": N.PARTIAL_LIST,
            "apiVersion": out.api_version,
            "metadata": meta,
            "items": [partial(o, out.version) for o in items],
        }
    else:
        doc = {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}
    return _write(out, doc, 200, None)


class WatchEncoder:
    """Watch events as asked: JSON lines (objects, one-row Tables with the column definitions in the
    first event only, or PartialObjectMetadata), or length-prefixed protobuf WatchEvent frames of
    PartialObjectMetadata. BOOKMARK events are transformed like any other (their object carries
    only metadata.resourceVersion and the initial-events-end annotation); ERROR events carry the
    Status untransformed."""

    def __init__(
        self, rt: resources.ResourceType, out: negotiation.Output, cache: watchlines.LineCache
    ) -> None:
        if out.convert == N.PARTIAL_LIST:
            raise negotiation.not_acceptable(
                message="you requested PartialObjectMetadataList, but a watch streams single objects"
            )
        self.rt = rt
        self.out = out
        self.first = True
        self.cache = cache

    @property
    def content_type(self) -> str:
        # kube-apiserver names the stream only for non-JSON framing (handlers/watch.go)
        return N.JSON if self.out.media_type == N.JSON else f"{self.out.media_type};stream=watch"

    def __call__(self, etype: str, obj: Obj) -> bytes:
        obj = responses.present(self.rt, obj)
        out = self.out
        if out.convert == N.PARTIAL:
            doc = partial(obj, out.version)
            if out.media_type == N.PROTOBUF:
                return protobuf.encode_watch_event(etype, _encode(out, doc)[0])
            return watchlines.encode(etype, doc)
        if out.convert == N.TABLE and etype != "BOOKMARK":
            t = tables.table(self.rt, [obj], str(obj["metadata"].get("resourceVersion", "")), "")
            if not self.first:
                t["columnDefinitions"] = []
            self.first = False
            return watchlines.encode(etype, t)
        if etype == "BOOKMARK":
            return watchlines.encode(etype, obj)
        return self.cache.get(etype, obj)

    def error(self, status: Obj) -> bytes:
        if self.out.media_type == N.PROTOBUF:
            return protobuf.encode_watch_event("ERROR", protobuf.encode("v1", "Status", status))
        return watchlines.encode("ERROR", status)
