"""Admission: the built-in ServiceAccount plugin, then mutating and validating webhooks.

Follows k8s.io/apiserver/pkg/admission/plugin/webhook: configurations in name order, webhooks in
list order; a webhook is called when one of its rules matches (operations, apiGroups,
apiVersions, resources with subresources, scope) and its namespaceSelector and objectSelector
match. Mutating webhooks run one after another, each seeing the previous one's patch; validating
webhooks cannot patch. Denials and failures read as kube-apiserver writes them.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from meshplane.devcluster import errors, seams
from meshplane.devcluster.admission import webhookclient
from meshplane.devcluster.api import patch, selectors
from meshplane.devcluster.controllers import serviceaccounts
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

GROUP = "admissionregistration.k8s.io"
MUTATING = f"{GROUP}/mutatingwebhookconfigurations"
VALIDATING = f"{GROUP}/validatingwebhookconfigurations"
# webhooks never see writes to their own configuration objects (IsExemptAdmissionConfigurationResource)
_EXEMPT = {(GROUP, "mutatingwebhookconfigurations"), (GROUP, "validatingwebhookconfigurations")}
_OPTIONS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


@dataclass(frozen=True, slots=True)
class Hook:
    config: str
    spec: Obj

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def fails_closed(self) -> bool:
        return bool(self.spec.get("failurePolicy", "Fail") != "Ignore")

    @property
    def timeout_seconds(self) -> int:
        t = self.spec.get("timeoutSeconds")
        return t if isinstance(t, int) and 1 <= t <= 30 else 10


def hooks(reader: webhookclient.Reader, key: str) -> Iterator[Hook]:
    """Every webhook of every configuration of one kind, configurations sorted by name."""
    for cfg in sorted(reader.items(key), key=lambda c: str((c.get("metadata") or {}).get("name", ""))):
        name = str((cfg.get("metadata") or {}).get("name", ""))
        for spec in cfg.get("webhooks") or []:
            if isinstance(spec, dict):
                yield Hook(name, spec)


def _exact_or_wildcard(items: Any, value: str) -> bool:
    return isinstance(items, list) and ("*" in items or value in items)


def rule_matches(rule: Obj, req: seams.AdmissionRequest) -> bool:
    """webhook/predicates/rules Matcher.Matches."""
    if not isinstance(rule, dict):
        return False
    scope = rule.get("scope") or "*"
    is_ns = req.resource == "namespaces" and req.api_group == ""
    if scope == "Namespaced" and (is_ns or not req.namespace):
        return False
    if scope == "Cluster" and not (is_ns or not req.namespace):
        return False
    if scope not in ("*", "Namespaced", "Cluster"):
        return False
    if not _exact_or_wildcard(rule.get("operations"), req.operation):
        return False
    if not _exact_or_wildcard(rule.get("apiGroups"), req.api_group):
        return False
    if not _exact_or_wildcard(rule.get("apiVersions"), req.api_version):
        return False
    for res in rule.get("resources") or []:
        if not isinstance(res, str):
            continue
        r, _, sub = res.partition("/")
        if (r == "*" or r == req.resource) and (sub == "*" or sub == req.subresource):
            return True
    return False


def _labels(obj: Obj | None) -> Mapping[str, str]:
    labels = ((obj or {}).get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _well_formed(sel: Any) -> bool:
    if not isinstance(sel, dict):
        return False
    match = sel.get("matchLabels") or {}
    if not isinstance(match, dict) or not all(isinstance(v, str) for v in match.values()):
        return False
    exprs = sel.get("matchExpressions") or []
    return isinstance(exprs, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("key"), str)
        and isinstance(e.get("operator"), str)
        and isinstance(e.get("values") or [], list)
        and all(isinstance(v, str) for v in e.get("values") or [])
        for e in exprs
    )


def _selector_matches(sel: Any, labels: Mapping[str, str]) -> bool:
    if not _well_formed(sel):
        raise errors.bad_request(f"invalid label selector: {sel!r}")
    return selectors.labels_match(selectors.label_selector_from_object(sel), labels)


def should_call(hook: Hook, req: seams.AdmissionRequest, reader: webhookclient.Reader) -> bool:
    """Rules, then namespaceSelector (namespace labels), then objectSelector (new or old object)."""
    rules = hook.spec.get("rules")
    if not isinstance(rules, list) or not any(rule_matches(r, req) for r in rules):
        return False
    ns_sel = hook.spec.get("namespaceSelector")
    is_ns = req.resource == "namespaces" and req.api_group == ""
    if ns_sel and (req.namespace or is_ns):
        if is_ns and not req.subresource:
            ns_labels = _labels(req.obj if req.obj is not None else req.old_obj)
        else:
            ns = reader.peek("namespaces", "", req.namespace)
            if ns is None:
                raise seams.AdmissionDenied(f'namespaces "{req.namespace}" not found', 404)
            ns_labels = _labels(ns)
        if not _selector_matches(ns_sel, ns_labels):
            return False
    obj_sel = hook.spec.get("objectSelector")
    if obj_sel:
        return _selector_matches(obj_sel, _labels(req.obj)) or (
            req.old_obj is not None and _selector_matches(obj_sel, _labels(req.old_obj))
        )
    return True


def review_version(hook: Hook) -> str:
    """The first AdmissionReview version the webhook accepts that we speak (CreateAdmissionObjects)."""
    versions = hook.spec.get("admissionReviewVersions")
    for v in versions if isinstance(versions, list) else []:
        if v in ("v1", "v1beta1"):
            return str(v)
    raise errors.CallError(
        "could not create admission objects: webhook does not accept known AdmissionReview versions"
    )


def review_request(req: seams.AdmissionRequest, uid: str, version: str = "v1") -> Obj:
    """An admission.k8s.io AdmissionReview for `req` (v1 and v1beta1 have the same shape)."""
    kind = {
        "group": req.api_group if req.kind_group is None else req.kind_group,
        "version": req.api_version if req.kind_version is None else req.kind_version,
        "kind": req.kind,
    }
    resource = {"group": req.api_group, "version": req.api_version, "resource": req.resource}
    body: Obj = {"uid": uid, "kind": kind, "resource": resource}
    if req.subresource:
        body["subResource"] = req.subresource
    body["requestKind"] = dict(kind)
    body["requestResource"] = dict(resource)
    if req.subresource:
        body["requestSubResource"] = req.subresource
    if req.name:
        body["name"] = req.name
    if req.namespace:
        body["namespace"] = req.namespace
    body["operation"] = req.operation
    body["userInfo"] = req.user.to_json()
    body["object"] = req.obj
    body["oldObject"] = req.old_obj
    body["dryRun"] = req.dry_run
    if req.operation in _OPTIONS:
        body["options"] = {"kind": _OPTIONS[req.operation], "apiVersion": "meta.k8s.io/v1"}
    return {"kind": "AdmissionReview", "apiVersion": f"admission.k8s.io/{version}", "request": body}


def parse_response(raw: bytes, uid: str, mutating: bool, version: str = "v1") -> Obj:
    """The verified `response` of an AdmissionReview (request.VerifyAdmissionResponse): strict for
    v1; for v1beta1, as Kubernetes, no uid/kind check and patchType defaults to JSONPatch."""
    try:
        review = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.CallError(f"failed to call webhook: {e}") from e
    if not isinstance(review, dict):
        raise errors.CallError("failed to call webhook: response is not an object")
    invalid = "received invalid webhook response: "
    resp = review.get("response")
    if not isinstance(resp, dict):
        raise errors.CallError(invalid + "webhook response was absent")
    if version == "v1beta1":
        if resp.get("patch") and not mutating:
            raise errors.CallError(invalid + "validating webhook may not return response.patch")
        if resp.get("patch") and resp.get("patchType") not in (None, "JSONPatch"):
            raise errors.CallError(
                invalid
                + f"webhook returned invalid response.patchType of {json.dumps(resp.get('patchType'))}"
            )
        return resp
    if resp.get("uid") != uid:
        raise errors.CallError(
            invalid + f"expected response.uid={json.dumps(uid)}, got {json.dumps(resp.get('uid'))}"
        )
    if review.get("apiVersion") != "admission.k8s.io/v1" or review.get("kind") != "AdmissionReview":
        got = f"{review.get('apiVersion', '')}, Kind={review.get('kind', '')}"
        raise errors.CallError(
            invalid + f"expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {got}"
        )
    if resp.get("patch"):
        if not resp.get("patchType"):
            raise errors.CallError(invalid + "webhook returned response.patch but not response.patchType")
        if not mutating:
            raise errors.CallError(invalid + "validating webhook may not return response.patch")
        if resp.get("patchType") != "JSONPatch":
            raise errors.CallError(
                invalid
                + f"webhook returned invalid response.patchType of {json.dumps(resp.get('patchType'))}"
            )
    return resp


def denial(hook_name: str, result: Any) -> seams.AdmissionDenied:
    """webhookerrors.ToStatusErr: the webhook's status code (at least 400) and message."""
    status = result if isinstance(result, dict) else {}
    code = status.get("code")
    code = code if isinstance(code, int) and code >= 400 else 400
    denied_by = f'admission webhook "{hook_name}" denied the request'
    if status.get("message"):
        return seams.AdmissionDenied(f"{denied_by}: {status['message']}", code)
    if status.get("reason"):
        return seams.AdmissionDenied(f"{denied_by}: {status['reason']}", code)
    return seams.AdmissionDenied(f"{denied_by} without explanation", code)


def apply_patch(hook_name: str, obj: Obj | None, b64: str) -> Obj:
    try:
        ops = json.loads(base64.b64decode(b64, validate=True))
    except (binascii.Error, ValueError) as e:
        raise _internal(f"failed calling webhook {json.dumps(hook_name)}: invalid patch: {e}") from e
    if not isinstance(ops, list):
        raise _internal("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if obj is None:
        if not ops:
            raise _internal("empty patch on an operation without an object")
        raise _internal(
            f"admission webhook {json.dumps(hook_name)} attempted to modify the object, "
            "which is not supported for this operation"
        )
    try:
        out = patch.json_patch(obj, ops)
    except errors.PatchError as e:
        raise _internal(str(e)) from e
    if not isinstance(out, dict):
        raise _internal(f"admission webhook {json.dumps(hook_name)} patched the object into a non-object")
    return out


def _internal(message: str) -> seams.AdmissionDenied:
    return seams.AdmissionDenied(f"Internal error occurred: {message}", 500)


class Admission:
    """Implements seams.Admission for the dev cluster."""

    def __init__(self, reader: webhookclient.Reader, cluster: str = "") -> None:
        self._reader = reader
        self._cluster = cluster

    async def mutate(self, request: seams.AdmissionRequest) -> Obj | None:
        obj = request.obj
        if obj is not None:
            obj = serviceaccounts.admit_pod(request, obj, self._reader)
        if (request.api_group, request.resource) in _EXEMPT:
            return obj
        for hook in hooks(self._reader, MUTATING):
            current = replace(request, obj=obj)
            if not self._should_call(hook, current):
                continue
            resp = await self._call(hook, current, mutating=True)
            if resp is not None and resp.get("patch"):
                obj = apply_patch(hook.name, obj, str(resp["patch"]))
        return obj

    async def validate(self, request: seams.AdmissionRequest) -> None:
        if (request.api_group, request.resource) in _EXEMPT:
            return
        for hook in hooks(self._reader, VALIDATING):
            if self._should_call(hook, request):
                await self._call(hook, request, mutating=False)

    def _should_call(self, hook: Hook, req: seams.AdmissionRequest) -> bool:
        try:
            return should_call(hook, req, self._reader)
        except errors.ApiError as e:  # an unparsable selector in a stored configuration
            raise _internal(e.message) from e

    async def _call(self, hook: Hook, req: seams.AdmissionRequest, *, mutating: bool) -> Obj | None:
        """The webhook's verified response; None when it failed open. Raises AdmissionDenied."""
        if req.dry_run and hook.spec.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise seams.AdmissionDenied(
                f"admission webhook {json.dumps(hook.name)} does not support dry run", 400
            )
        uid = str(uuid.uuid4())
        cc = hook.spec.get("clientConfig")
        cc = cc if isinstance(cc, dict) else {}
        try:
            tgt = webhookclient.target(cc, hook.timeout_seconds)
            ctx = webhookclient.ssl_context(cc.get("caBundle"))
            version = review_version(hook)
            body = json.dumps(review_request(req, uid, version)).encode()
            raw = await webhookclient.post(self._reader, tgt, ctx, body, hook.timeout_seconds)
            resp = parse_response(raw, uid, mutating, version)
        except errors.CallError as e:
            failed = f"failed calling webhook {json.dumps(hook.name)}: {e}"
            if not hook.fails_closed:
                log.warning(
                    "webhook failed, failing open cluster=%s webhook=%s resource=%s %s/%s error=%s",
                    self._cluster,
                    hook.name,
                    req.resource,
                    req.namespace,
                    req.name,
                    failed,
                )
                return None
            log.info("webhook failed cluster=%s webhook=%s error=%s", self._cluster, hook.name, failed)
            raise _internal(failed) from e
        if not resp.get("allowed"):
            log.info(
                "webhook denied cluster=%s webhook=%s op=%s resource=%s %s/%s",
                self._cluster,
                hook.name,
                req.operation,
                req.resource,
                req.namespace,
                req.name,
            )
            raise denial(hook.name, resp.get("status"))
        return resp
