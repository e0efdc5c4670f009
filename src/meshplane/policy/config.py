"""The security policy a push works from: every valid PeerAuthentication, AuthorizationPolicy and
RequestAuthentication.

The config watcher lists the objects from the config cluster and calls `build()`; invalid objects
are returned as errors (to log and count) and left out, so one bad object never hides the others.
The result goes into `PushContext.policy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.model import crfields
from meshplane.model.mesh import MtlsMode
from meshplane.policy import authz, peerauthn, reqauthn

KINDS = (peerauthn.KIND, authz.KIND, reqauthn.KIND)
Policy = peerauthn.PeerAuthentication | authz.AuthorizationPolicy | reqauthn.RequestAuthentication


@dataclass(frozen=True, slots=True)
class WorkloadPolicy:
    """What a workload's inbound HTTP/TCP filters are built from."""

    authorization: tuple[authz.AuthorizationPolicy, ...] = ()
    request_authentication: tuple[reqauthn.RequestAuthentication, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    peer_authentications: tuple[peerauthn.PeerAuthentication, ...] = ()
    authorization_policies: tuple[authz.AuthorizationPolicy, ...] = ()
    request_authentications: tuple[reqauthn.RequestAuthentication, ...] = ()

    def mtls(
        self,
        root_namespace: str,
        namespace: str,
        labels: Mapping[str, str],
        default: MtlsMode = MtlsMode.PERMISSIVE,
    ) -> peerauthn.Effective:
        """The workload's effective mTLS mode per port (peerauthn.compose)."""
        return peerauthn.compose(self.peer_authentications, root_namespace, namespace, labels, default)

    def authorization(
        self, root_namespace: str, namespace: str, labels: Mapping[str, str]
    ) -> tuple[authz.AuthorizationPolicy, ...]:
        """The AuthorizationPolicies that apply to the workload (authz.for_workload)."""
        if not self.authorization_policies:
            return ()
        return authz.for_workload(self.authorization_policies, root_namespace, namespace, labels)

    def workload(self, root_namespace: str, namespace: str, labels: Mapping[str, str]) -> WorkloadPolicy:
        """The AuthorizationPolicies and RequestAuthentications that apply to the workload."""
        ra = (
            reqauthn.for_workload(self.request_authentications, root_namespace, namespace, labels)
            if self.request_authentications
            else ()
        )
        return WorkloadPolicy(self.authorization(root_namespace, namespace, labels), ra)


def parse(obj: Mapping[str, Any]) -> Policy:
    """Parse one security.istio.io object of a kind this package knows."""
    kind = obj.get("kind") if isinstance(obj, Mapping) else None
    if kind == peerauthn.KIND:
        return peerauthn.parse(obj)
    if kind == authz.KIND:
        return authz.parse(obj)
    if kind == reqauthn.KIND:
        return reqauthn.parse(obj)
    raise crfields.ConfigError(str(kind), "kind", f"must be one of {', '.join(KINDS)}")


def build(objects: Iterable[Mapping[str, Any]]) -> tuple[PolicyConfig, list[crfields.ConfigError]]:
    peer: list[peerauthn.PeerAuthentication] = []
    allow: list[authz.AuthorizationPolicy] = []
    jwt: list[reqauthn.RequestAuthentication] = []
    problems: list[crfields.ConfigError] = []
    for obj in objects:
        try:
            parsed = parse(obj)
        except crfields.ConfigError as e:
            problems.append(e)
            stand_in = authz.deny_all_stand_in(obj) if obj.get("kind") == authz.KIND else None
            if stand_in is not None:  # an invalid DENY denies everything it selects (fails closed)
                allow.append(stand_in)
            continue
        if isinstance(parsed, peerauthn.PeerAuthentication):
            peer.append(parsed)
        elif isinstance(parsed, reqauthn.RequestAuthentication):
            jwt.append(parsed)
        else:
            allow.append(parsed)
    peer.sort(key=lambda p: (p.created, p.namespace, p.name))
    allow.sort(key=lambda p: (p.created, p.namespace, p.name))
    jwt.sort(key=lambda p: (p.created, p.namespace, p.name))
    return PolicyConfig(tuple(peer), tuple(allow), tuple(jwt)), problems
