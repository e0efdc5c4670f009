"""Who am I and may I: SelfSubjectReview, SelfSubjectAccessReview and SubjectAccessReview.

What `kubectl auth whoami` and `kubectl auth can-i` ask, answered from the caller's UserInfo and
the RBAC authorizer (pkg/registry/authorization). Create-only, nothing is stored.
"""

from __future__ import annotations

import logging

from meshplane.devcluster import errors, seams
from meshplane.devcluster.auth import rbac
from meshplane.devcluster.schema import resources
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

AUTHZ_GROUP = "authorization.k8s.io"
AUTHZ_VERSION = f"{AUTHZ_GROUP}/v1"
_RESOURCE_FIELDS = ("namespace", "verb", "group", "version", "resource", "subresource", "name")


def _invalid(kind: str, field: str, value: str, message: str) -> errors.ApiError:
    return errors.invalid(
        kind, AUTHZ_GROUP, "", [("FieldValueInvalid", field, f"Invalid value: {value}: {message}")]
    )


def _spec(body: Obj) -> Obj:
    spec = body.get("spec")
    if spec is not None and not isinstance(spec, dict):
        raise errors.bad_request("spec must be an object")
    return spec or {}


def attributes(kind: str, spec: Obj, user: seams.UserInfo) -> seams.RequestAttributes:
    """The authorizer attributes a review asks about (exactly one of the two attribute kinds)."""
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (res is None) == (non is None):
        raise _invalid(
            kind,
            "spec.resourceAttributes",
            '"null"',
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )
    attrs = res if res is not None else non
    if not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values() if v is not None):
        raise errors.bad_request("review attributes must be an object of strings")
    if non is not None:
        return seams.RequestAttributes(
            user, attrs.get("verb") or "", "", "", "", path=attrs.get("path") or "", resource_request=False
        )
    f = {k: attrs.get(k) or "" for k in _RESOURCE_FIELDS}
    return seams.RequestAttributes(
        user, f["verb"], f["group"], f["version"], f["resource"], f["subresource"], f["namespace"], f["name"]
    )


def _review(kind: str, spec: Obj, allowed: bool, reason: str) -> Obj:
    status: Obj = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {
        "kind": kind,
        "apiVersion": AUTHZ_VERSION,
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }


class AccessReviews:
    def __init__(self, authorizer: rbac.Authorizer, cluster: str = "") -> None:
        self._authz = authorizer
        self._cluster = cluster

    def register(self, registry: resources.Registry) -> None:
        for group, kind, plural, handler in (
            ("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", self.self_subject_review),
            (
                AUTHZ_GROUP,
                "SelfSubjectAccessReview",
                "selfsubjectaccessreviews",
                self.self_subject_access_review,
            ),
            (AUTHZ_GROUP, "SubjectAccessReview", "subjectaccessreviews", self.subject_access_review),
        ):
            pkg = group.split(".")[0]
            rt = resources.ResourceType(
                group,
                "v1",
                kind,
                plural,
                kind.lower(),
                False,
                verbs=("create",),
                schema_name=f"io.k8s.api.{pkg}.v1.{kind}",
            )
            registry.add_virtual(rt, handler)

    async def self_subject_review(self, req: resources.HandlerRequest) -> tuple[int, Obj]:
        return 201, {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": req.user.to_json()},
        }

    async def self_subject_access_review(self, req: resources.HandlerRequest) -> tuple[int, Obj]:
        spec = _spec(req.body)
        allowed, reason = await self._authz.authorize(attributes("SelfSubjectAccessReview", spec, req.user))
        return 201, _review("SelfSubjectAccessReview", spec, allowed, reason)

    async def subject_access_review(self, req: resources.HandlerRequest) -> tuple[int, Obj]:
        spec = _spec(req.body)
        name, groups, uid = spec.get("user") or "", spec.get("groups") or [], spec.get("uid") or ""
        extra = spec.get("extra") or {}
        if (
            not isinstance(name, str)
            or not isinstance(uid, str)
            or not isinstance(groups, list)
            or not all(isinstance(g, str) for g in groups)
            or not isinstance(extra, dict)
        ):
            raise errors.bad_request("spec.user, spec.uid, spec.groups and spec.extra must be strings")
        if not name and not groups:
            raise _invalid(
                "SubjectAccessReview", "spec.user", '""', "at least one of user or group must be specified"
            )
        user = seams.UserInfo(
            name,
            uid,
            tuple(groups),
            {str(k): tuple(str(x) for x in v) for k, v in extra.items() if isinstance(v, list)},
        )
        allowed, reason = await self._authz.authorize(attributes("SubjectAccessReview", spec, user))
        log.debug(
            "subject access review cluster=%s by=%s for=%s allowed=%s",
            self._cluster,
            req.user.username,
            name,
            allowed,
        )
        return 201, _review("SubjectAccessReview", spec, allowed, reason)
