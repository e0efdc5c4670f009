"""What generators read: the push's immutable view of the mesh.

`push.context.PushContext` satisfies this protocol; it is declared here because the xds layer sits
below push and must not import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from meshplane.model import endpoint, mesh, service
from meshplane.model.ids import ClusterId, Hostname
from meshplane.networking import config as networking_config
from meshplane.policy import config as policy_config

Shards = Mapping[ClusterId, tuple[endpoint.Endpoint, ...]]


class Snapshot(Protocol):
    @property
    def version(self) -> str: ...

    @property
    def mesh(self) -> mesh.MeshConfig: ...

    @property
    def services(self) -> Mapping[Hostname, service.Service]: ...

    @property
    def endpoints(self) -> Mapping[Hostname, Shards]: ...

    @property
    def networking(self) -> networking_config.NetworkingConfig: ...

    @property
    def policy(self) -> policy_config.PolicyConfig: ...
