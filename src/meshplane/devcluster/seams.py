"""The seams between the dev cluster's REST core and its security/admission parts.

The REST core (store, handlers, watch) calls these Protocols for every request; the
authentication, RBAC and admission modules implement them. Keeping them here lets either side be
read and tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from meshplane.runtime.jsonobj import Obj


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An authenticated caller, as Kubernetes' user.Info (also what TokenReview returns)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # audiences the presented token was valid for (empty for the admin token)
    audiences: tuple[str, ...] = ()

    def to_json(self) -> Obj:
        """As Kubernetes' UserInfo object (TokenReview status, admission requests)."""
        out: Obj = {"username": self.username}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """What RBAC decides on (Kubernetes' authorizer.Attributes for a resource request)."""

    user: UserInfo
    verb: str  # get list watch create update patch delete deletecollection
    api_group: str  # "" for core
    api_version: str
    resource: str  # plural, e.g. "pods"
    subresource: str = ""  # e.g. "status", "token"
    namespace: str = ""
    name: str = ""
    # non-resource requests (discovery, /version, /openapi) use path instead of resource
    path: str = ""
    resource_request: bool = True


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    operation: str  # CREATE UPDATE DELETE CONNECT
    api_group: str
    api_version: str
    kind: str
    resource: str
    subresource: str
    namespace: str
    name: str
    user: UserInfo
    obj: Obj | None  # the object after defaulting (None for DELETE)
    old_obj: Obj | None  # the stored object (UPDATE, DELETE)
    dry_run: bool = False
    kind_group: str | None = None  # the object's group/version when it is not the resource's own
    kind_version: str | None = None  # (a Scale, autoscaling/v1, for deployments/scale)


class AdmissionDenied(Exception):
    """A webhook refused the request, or failed under failurePolicy Fail."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


class Authenticator(Protocol):
    async def authenticate(self, bearer_token: str | None) -> UserInfo | None:
        """Return the user, or None when the token is missing or invalid (the core answers 401)."""
        ...


class Authorizer(Protocol):
    async def authorize(self, attrs: RequestAttributes) -> tuple[bool, str]:
        """(allowed, reason). The core turns a denial into Kubernetes' 403 Status."""
        ...


class Admission(Protocol):
    async def mutate(self, request: AdmissionRequest) -> Obj | None:
        """Run mutating admission; return the (possibly patched) object. Raises AdmissionDenied."""
        ...

    async def validate(self, request: AdmissionRequest) -> None:
        """Run validating admission. Raises AdmissionDenied."""
        ...
