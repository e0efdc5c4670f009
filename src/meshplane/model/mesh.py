"""Mesh-wide settings the registry and generators need (a subset of Istio's MeshConfig)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from enum import StrEnum

from meshplane.model.ids import Hostname


class MtlsMode(StrEnum):
    PERMISSIVE = "PERMISSIVE"  # inbound accepts Istio mTLS and plaintext
    STRICT = "STRICT"  # inbound accepts Istio mTLS only
    DISABLE = "DISABLE"  # inbound accepts plaintext only; clients send plaintext (PeerAuthentication)


class OutboundTrafficPolicy(StrEnum):
    """MeshConfig.outboundTrafficPolicy.mode: where a sidecar sends traffic to a destination the
    mesh does not know (PassthroughCluster, or BlackHoleCluster)."""

    ALLOW_ANY = "ALLOW_ANY"
    REGISTRY_ONLY = "REGISTRY_ONLY"


# Istio's defaults (pilot/pkg/model/cluster_local.go): kube-system services, the API server and the
# discovery address host stay in their own cluster.
DEFAULT_CLUSTER_LOCAL_HOSTS: tuple[str, ...] = (
    "*.kube-system.svc.cluster.local",
    "kubernetes.default.svc.cluster.local",
    "istiod.istio-system.svc.cluster.local",
)


@dataclass(frozen=True, slots=True)
class MeshConfig:
    trust_domain: str = "cluster.local"
    mesh_id: str = ""
    root_namespace: str = "istio-system"
    mtls_mode: MtlsMode = MtlsMode.PERMISSIVE
    outbound_traffic_policy: OutboundTrafficPolicy = OutboundTrafficPolicy.ALLOW_ANY
    # host patterns (exact or `*.suffix`) whose endpoints never leave their cluster
    cluster_local_hosts: tuple[str, ...] = DEFAULT_CLUSTER_LOCAL_HOSTS
    # host patterns explicitly made global again (serviceSettings clusterLocal: false)
    not_cluster_local_hosts: tuple[str, ...] = ()

    def is_cluster_local(self, host: Hostname) -> bool:
        if any(fnmatch.fnmatchcase(host, p) for p in self.not_cluster_local_hosts):
            return False
        return any(fnmatch.fnmatchcase(host, p) for p in self.cluster_local_hosts)
