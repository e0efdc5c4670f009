"""What every request handler needs, assembled once by `app.DevCluster`."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from meshplane.devcluster import seams
from meshplane.devcluster.api import watchlines
from meshplane.devcluster.controllers import objects
from meshplane.devcluster.schema import resources, schemas
from meshplane.devcluster.storage import store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime.jsonobj import Obj


@dataclass(slots=True)
class Settings:
    name: str = "cluster"
    bookmark_interval: float = 60.0  # seconds between BOOKMARK events on watches that allow them
    watch_timeout: float = 1800.0  # default watch duration when the client sets no timeoutSeconds
    history_size: int = 10000  # events kept for watches resuming from a resourceVersion
    git_version: str = "v1.32.0-meshplane"


class NoAdmission:
    """Admission that changes and refuses nothing (until the webhook admission is plugged in)."""

    async def mutate(self, request: seams.AdmissionRequest) -> Obj | None:
        return request.obj

    async def validate(self, request: seams.AdmissionRequest) -> None:
        return None


@dataclass(slots=True)
class ApiContext:
    store: store.Store
    registry: resources.Registry
    objects: objects.ObjectApi
    schemas: schemas.Schemas
    clock: clock_mod.Clock
    settings: Settings
    authenticator: seams.Authenticator
    authorizer: seams.Authorizer
    admission: seams.Admission = field(default_factory=NoAdmission)
    watch_lines: watchlines.LineCache = field(default_factory=watchlines.LineCache)
    kubelet_tls: ssl.SSLContext | None = None  # the API server's client to kubelets (kubeletproxy)
