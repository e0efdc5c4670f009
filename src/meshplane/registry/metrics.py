"""Registry and multicluster metrics, with Istio's names, bound to a caller-supplied Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class RegistryMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.k8s_reg_events = Counter(
            "pilot_k8s_reg_events",
            "Events from the Kubernetes registries.",
            ["cluster", "type", "event"],
            registry=r,
        )
        self.managed_clusters = Gauge(
            "istiod_managed_clusters", "Clusters managed by this control plane.", ["cluster_type"], registry=r
        )
        self.remote_sync_status = Gauge(
            "istiod_remote_cluster_sync_status",
            "Sync status of each cluster (1 for the current status).",
            ["cluster", "cluster_type", "status"],
            registry=r,
        )
        self.secret_events = Counter(
            "remote_cluster_secret_events", "Remote secret events seen.", ["event"], registry=r
        )
        self.sync_timeouts = Counter(
            "remote_cluster_sync_timeouts",
            "Remote clusters that did not sync in time.",
            ["cluster"],
            registry=r,
        )
        self.remote_errors = Counter(
            "remote_cluster_errors", "Remote secret entries that could not be used.", ["reason"], registry=r
        )
