"""The validation webhook over HTTP (`/validate`): AdmissionReview v1 in, allowed or denied out.

As Istio's pkg/webhooks/validation/server/server.go: CREATE and UPDATE are checked, anything else
(DELETE, CONNECT) is allowed; an invalid object is denied with `configuration is invalid: <the
error>` (the error names the object and the field path), which `kubectl apply` prints after
`admission webhook "validation.istio.io" denied the request:`. The checks themselves are given by
the composition root (discovery/webhook.py: the networking and policy parsers, which this package
may not import); a kind the control plane does not read is allowed with a warning saying so,
instead of Istio's "unrecognized type" denial, so config meshplane ignores is never blocked.
Bad requests are answered, never raised (the same rules as the injection handler).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from meshplane.runtime import jsonobj
from meshplane.runtime import logging as rlog
from meshplane.webhooks import errors, handler

log = logging.getLogger(__name__)

PATH = "/validate"
INVALID = "configuration is invalid: "


@dataclass(frozen=True, slots=True)
class Verdict:
    problem: str = ""  # why the object is invalid; '' when it is valid
    warning: str = ""  # something the user should know (e.g. a kind that is not read)


Checker = Callable[[Mapping[str, Any]], Verdict]


class Validator:
    """Answers validation reviews with `check`; counts what it denied (for /metrics and tests)."""

    def __init__(self, check: Checker) -> None:
        self.check = check
        self.denied = 0
        self.allowed = 0

    def review(self, body: bytes) -> dict[str, Any]:
        try:
            review = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return handler._response("", False, f"could not decode request body: {e}")
        uid = ""
        try:
            req = handler._request(review)
            uid = req["uid"]
            answer = self._review(req)
        except errors.WebhookError as e:
            log.warning("validation request rejected %s", rlog.kv(uid=uid, error=str(e)))
            return handler._response(uid, False, str(e))
        except Exception as e:  # a bug must not take the webhook down: deny, saying why
            log.exception("validation failed %s", rlog.kv(uid=uid))
            return handler._response(uid, False, f"validation failed: {e!r}", code=500)
        return answer

    def _review(self, req: dict[str, Any]) -> dict[str, Any]:
        uid: str = req["uid"]
        if req.get("operation") not in ("CREATE", "UPDATE"):
            return handler._response(uid, True)
        obj = req.get("object")
        if not isinstance(obj, dict):
            raise errors.BadReview("AdmissionReview request has no object")
        obj = dict(obj)
        meta = dict(jsonobj.as_mapping(obj.get("metadata")))
        if not meta.get("namespace") and isinstance(req.get("namespace"), str):
            meta["namespace"] = req["namespace"]  # the request's namespace, as the API server stores it
        obj["metadata"] = meta
        verdict = self.check(obj)
        if verdict.problem:
            self.denied += 1
            log.info("config refused %s", rlog.kv(uid=uid, kind=obj.get("kind"), reason=verdict.problem))
            return handler._response(uid, False, INVALID + verdict.problem)
        self.allowed += 1
        out = handler._response(uid, True)
        if verdict.warning:
            out["response"]["warnings"] = [verdict.warning]
        return out

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.content.read(handler.MAX_BODY + 1)
        if len(body) > handler.MAX_BODY:
            resp = web.Response(status=413, text=f"request body larger than {handler.MAX_BODY} bytes")
            resp.force_close()
            return resp
        if not body:
            return web.Response(status=400, text="no body found")
        if request.content_type != "application/json":
            return web.Response(status=415, text="invalid Content-Type, want `application/json`")
        return web.json_response(self.review(body))


def add_routes(app: web.Application, validator: Validator) -> None:
    app.router.add_post(PATH, validator.handle)
