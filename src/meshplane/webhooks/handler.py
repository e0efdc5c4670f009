"""The injection webhook over HTTP: AdmissionReview v1 in, AdmissionReview with a JSONPatch out.

Routes `/inject` and `/inject/...` (the path carries per-cluster env overrides). Bad requests are
answered, never raised: no body → 400, wrong content type → 415, body over MAX_BODY → 413, anything
that is not a v1 AdmissionReview with a request → an AdmissionReview whose response is not allowed
and says why; a request for something other than a Pod CREATE is allowed unchanged, as with Istio.
TLS and the listening port (15017) belong to the composition root that owns the aiohttp app.

Which pods reach the webhook is the webhook configuration's `namespaceSelector`/`objectSelector`,
evaluated by the API server of the pod's own cluster. The handler never second-guesses it with
namespace labels: one control plane serves every cluster's API server, and a namespace of the
same name in another cluster (e.g. the primary's informer) says nothing about this pod. Once
called, it applies only what Istio's injector applies (pkg/kube/inject/inject.go `injectRequired`:
hostNetwork, ignored namespaces, `sidecar.istio.io/inject`, the injection policy) in policy.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

from aiohttp import web

from meshplane.runtime import jsonobj
from meshplane.runtime import logging as rlog
from meshplane.webhooks import errors, inject
from meshplane.webhooks.settings import InjectionSettings

log = logging.getLogger(__name__)

API_VERSION = "admission.k8s.io/v1"
MAX_BODY = 10 * 1024 * 1024  # Istio's bound on admission request bodies
_THREAD_OVER = 64 * 1024  # bodies larger than this are decoded and patched off the event loop


def _response(
    uid: str, allowed: bool, message: str = "", patch: list[Any] | None = None, code: int = 400
) -> dict[str, Any]:
    resp: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if message and not allowed:
        resp["status"] = {"code": code, "message": message}
    if patch:
        resp["patchType"] = "JSONPatch"
        resp["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode()
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": resp}


def _request(review: Any) -> dict[str, Any]:
    if not isinstance(review, dict):
        raise errors.BadReview("request body is not a JSON object")
    if review.get("kind") != "AdmissionReview":
        raise errors.BadReview(f"expected kind AdmissionReview, got {review.get('kind')!r}")
    if review.get("apiVersion") != API_VERSION:
        raise errors.BadReview(
            f"unsupported AdmissionReview version {review.get('apiVersion')!r} (want {API_VERSION})"
        )
    req = review.get("request")
    if not isinstance(req, dict):
        raise errors.BadReview("AdmissionReview has no request")
    uid = req.get("uid")
    if not isinstance(uid, str) or not uid:
        raise errors.BadReview("AdmissionReview request has no uid")
    return req


def _check_pod(pod: dict[str, Any]) -> None:
    """The shapes injection relies on; anything else is refused with the field named."""
    meta, spec = pod.get("metadata", {}), pod.get("spec", {})
    if not isinstance(meta, dict) or not isinstance(spec, dict):
        raise errors.BadReview("pod metadata and spec must be objects")
    for key in ("labels", "annotations"):
        value = meta.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise errors.BadReview(f"pod metadata.{key} must map strings to strings")
    for key in ("name", "generateName", "namespace"):
        if not isinstance(meta.get(key, ""), str):
            raise errors.BadReview(f"pod metadata.{key} must be a string")
    if not isinstance(meta.get("ownerReferences", []), list):
        raise errors.BadReview("pod metadata.ownerReferences must be a list")
    for key in ("containers", "initContainers", "volumes", "imagePullSecrets"):
        items = spec.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise errors.BadReview(f"pod spec.{key} must be a list of objects")
    for c in spec.get("containers") or []:
        if not isinstance(c.get("name"), str) or not isinstance(c.get("ports", []), list):
            raise errors.BadReview("every pod container needs a string name (and ports as a list)")


class Injector:
    """Answers injection reviews with the current settings (replace them with `update`)."""

    def __init__(self, settings: InjectionSettings) -> None:
        self.settings = settings

    def update(self, settings: InjectionSettings) -> None:
        self.settings = settings

    def review(self, body: bytes, path: str) -> dict[str, Any]:
        """The AdmissionReview answering `body` (pure apart from logging; never raises)."""
        try:
            review = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            log.warning("injection request is not JSON %s", rlog.kv(path=path, error=str(e)[:200]))
            return _response("", False, f"could not decode request body: {e}")
        uid = ""
        if isinstance(review, dict) and isinstance(review.get("request"), dict):
            raw_uid = review["request"].get("uid")
            uid = raw_uid if isinstance(raw_uid, str) else ""
        try:
            req = _request(review)
            return self._review(req, path)
        except errors.WebhookError as e:
            log.warning("injection request rejected %s", rlog.kv(path=path, uid=uid, error=str(e)))
            return _response(uid, False, str(e))
        except Exception as e:  # a bug must not take the webhook down; the pod is refused with the reason
            log.exception("injection failed %s", rlog.kv(path=path, uid=uid))
            return _response(uid, False, f"injection failed: {e!r}", code=500)

    def _review(self, req: dict[str, Any], path: str) -> dict[str, Any]:
        uid: str = req["uid"]
        kind = jsonobj.as_mapping(req.get("kind"))
        if (kind.get("group"), kind.get("kind")) != ("", "Pod") or req.get("operation", "CREATE") != "CREATE":
            return _response(uid, True)  # not ours to change
        pod = req.get("object")
        if not isinstance(pod, dict) or pod.get("kind", "Pod") != "Pod":
            raise errors.BadReview("AdmissionReview request object is not a Pod")
        _check_pod(pod)
        namespace = str(req.get("namespace") or (pod.get("metadata") or {}).get("namespace") or "")
        result = inject.inject(pod, namespace, self.settings, path)
        return _response(uid, True, patch=result.patch)

    async def handle(self, request: web.Request) -> web.Response:
        too_large = request.content_length is not None and request.content_length > MAX_BODY
        body = b"" if too_large else await request.content.read(MAX_BODY + 1)
        if too_large or len(body) > MAX_BODY:
            resp = web.Response(status=413, text=f"request body larger than {MAX_BODY} bytes")
            resp.force_close()  # the rest of the body is never read: do not keep the connection
            return resp
        if not body:
            return web.Response(status=400, text="no body found")
        if request.content_type != "application/json":
            return web.Response(status=415, text="invalid Content-Type, want `application/json`")
        if len(body) > _THREAD_OVER:
            answer = await asyncio.to_thread(self.review, body, request.path)
        else:
            answer = self.review(body, request.path)
        return web.json_response(answer)


def add_routes(app: web.Application, injector: Injector) -> None:
    """Serve `/inject` and `/inject/...` on `app` (the caller owns TLS, the port and client_max_size)."""
    app.router.add_post("/inject", injector.handle)
    app.router.add_post("/inject/{tail:.*}", injector.handle)
