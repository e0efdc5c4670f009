"""The dev cluster's errors.

`DevclusterError` is the root. `ApiError` is a Kubernetes `Status`: every failure the dev cluster
answers is one of these. The others are raised inside one part (a token, a patch, a protobuf body, a
webhook call, a background launch) and turned into an `ApiError` (or a CLI message) by its caller.
"""

from __future__ import annotations

from meshplane import errors as meshplane_errors
from meshplane.runtime.jsonobj import Obj

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    504: "Timeout",
}


class DevclusterError(meshplane_errors.MeshplaneError):
    """Base of the dev cluster's errors."""


class ApiError(DevclusterError):
    """An error answered as a Kubernetes Status object (kind Status, status Failure)."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        *,
        name: str = "",
        group: str = "",
        kind: str = "",
        causes: list[Obj] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes or []

    def status(self) -> Obj:
        details: Obj = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        out: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            out["details"] = details
        return out


def qualified(plural: str, group: str) -> str:
    """`pods` or `deployments.apps`, as Kubernetes names a resource in messages."""
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, f'{qualified(plural, group)} "{name}" not found', name=name, group=group, kind=plural
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{qualified(plural, group)} "{name}" already exists',
        "AlreadyExists",
        name=name,
        group=group,
        kind=plural,
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> ApiError:
    detail = (
        why or "the object has been modified; please apply your changes to the latest version and try again"
    )
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {detail}',
        "Conflict",
        name=name,
        group=group,
        kind=plural,
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid. causes: (reason type, field path, message), e.g. ("FieldValueRequired", ...)."""
    parts = [f"{field}: {msg}" for _t, field, msg in causes]
    gk = f"{kind}.{group}" if group else kind
    body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(
        422,
        f'{gk} "{name}" is invalid: {body}',
        "Invalid",
        name=name,
        group=group,
        kind=kind,
        causes=[{"reason": t, "message": m, "field": f} for t, f, m in causes],
    )


def expired(message: str) -> ApiError:
    return ApiError(410, message, "Expired")


def gone(message: str) -> ApiError:
    return ApiError(410, message, "Gone")


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, message, "MethodNotAllowed")


def forbidden(plural: str, group: str, name: str, message: str) -> ApiError:
    return ApiError(403, message, "Forbidden", name=name, group=group, kind=plural)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"
        if not content_type
        else f'unsupported media type "{content_type}"',
    )


class TokenError(DevclusterError):
    """A token this cluster recognises (its issuer) that is not valid; the text is Kubernetes'."""


class PatchError(DevclusterError):
    """A patch document that cannot be applied (the API answers 422 or 400 with this text)."""


class ProtoError(DevclusterError):
    """A protobuf request body that does not decode (the API answers 400 with this text)."""


class CallError(DevclusterError):
    """Why a webhook could not be called; the text follows `failed calling webhook "NAME": `."""


class LaunchError(DevclusterError):
    """A background dev cluster did not start (the message names its log)."""
