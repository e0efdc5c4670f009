"""The networking config a push works from: every valid Gateway and VirtualService.

The registry lists Gateway and VirtualService objects (from the config cluster, as Istio does) and
calls `build()`; invalid objects are returned as errors (to log and count) and left out, so one bad
object never hides the others. The result goes into `PushContext.networking`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.model.ids import DEFAULT_DOMAIN
from meshplane.networking import errors, gateway, virtualservice

log = logging.getLogger(__name__)

KINDS = ("Gateway", "VirtualService")


@dataclass(frozen=True, slots=True)
class NetworkingConfig:
    gateways: tuple[gateway.Gateway, ...] = ()
    virtual_services: tuple[virtualservice.VirtualService, ...] = ()

    def gateways_for(self, labels: Mapping[str, str]) -> tuple[gateway.Gateway, ...]:
        """Gateways whose selector picks a router proxy with these labels, in any namespace
        (Istio's PILOT_SCOPE_GATEWAY_TO_NAMESPACE defaults to false)."""
        return tuple(g for g in self.gateways if g.selects(labels))

    def virtual_services_for(self, gateway_key: str) -> tuple[virtualservice.VirtualService, ...]:
        return tuple(vs for vs in self.virtual_services if gateway_key in vs.gateways)


def _sort_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    # Istio orders config by creation time, then namespace/name; the first of two conflicting wins.
    md = obj.get("metadata") if isinstance(obj, Mapping) else None
    md = md if isinstance(md, Mapping) else {}
    return (str(md.get("creationTimestamp") or ""), str(md.get("namespace") or ""), str(md.get("name") or ""))


def build(
    objects: Iterable[Mapping[str, Any]], domain: str = DEFAULT_DOMAIN
) -> tuple[NetworkingConfig, list[errors.ConfigError]]:
    gateways: list[gateway.Gateway] = []
    services: list[virtualservice.VirtualService] = []
    problems: list[errors.ConfigError] = []
    for obj in sorted(objects, key=_sort_key):
        kind = obj.get("kind") if isinstance(obj, Mapping) else None
        try:
            if kind == "Gateway":
                gateways.append(gateway.parse(obj))
            elif kind == "VirtualService":
                services.append(virtualservice.parse(obj, domain=domain))
            else:
                raise errors.ConfigError(str(kind), "kind", f"must be one of {', '.join(KINDS)}")
        except errors.ConfigError as e:
            problems.append(e)
    return NetworkingConfig(tuple(gateways), tuple(services)), problems
