"""Errors of the Kubernetes layer. Library errors are wrapped with `raise … from`."""

from __future__ import annotations

from lightkube.core import exceptions as lk_exceptions

from meshplane import errors


class KubeError(errors.MeshplaneError):
    """Base of the kube layer's errors."""


class KubeconfigError(KubeError):
    """A kubeconfig (a file, a context, or a remote secret's value) cannot be used; the message says why."""


# Status checks on the API server's answers (lightkube's ApiError carries the Status object).


def status_code(e: BaseException) -> int | None:
    """The HTTP status code of an API server error; None for other errors or a Status without one."""
    if not isinstance(e, lk_exceptions.ApiError) or e.status is None:
        return None
    code: int | None = e.status.code
    return code


def is_not_found(e: BaseException) -> bool:
    return status_code(e) == 404


def is_conflict(e: BaseException) -> bool:
    """409: the object already exists, or its resourceVersion is stale."""
    return status_code(e) == 409


def is_gone(e: BaseException) -> bool:
    """410: a watch's resourceVersion is too old; list again."""
    return status_code(e) == 410


def describe(e: BaseException) -> str:
    """`404: message` for an API server error, `TypeName: text` for anything else (for logs)."""
    if isinstance(e, lk_exceptions.ApiError):
        code = status_code(e)
        message = e.status.message if e.status is not None else ""
        return f"{'?' if code is None else code}: {message or ''}"
    return f"{type(e).__name__}: {e}"
