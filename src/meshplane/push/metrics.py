"""Prometheus metrics of the push pipeline and the xDS server, with Istio's names.

One `Metrics` per discovery server instance (its own registry), so tests and several servers in
one process never share counters. Istio exports counters without the `_total` suffix (its
OpenTelemetry exporter uses `WithoutCounterSuffixes`), so `render()` prints them the same way:
`pilot_xds_pushes{type="cds"} 3`, which is what Istio's dashboards query.
"""

from __future__ import annotations

import re

import prometheus_client
from prometheus_client import exposition

CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST

# Istio's buckets (pilot/pkg/xds/monitoring.go, pkg/xds/monitoring.go)
_PUSH_BUCKETS = (0.01, 0.1, 1, 3, 5, 10, 20, 30)
_CONVERGE_BUCKETS = (0.1, 0.5, 1, 3, 5, 10, 20, 30)
_INIT_BUCKETS = (0.01, 0.1, 0.5, 1, 3, 5)
_SIZE_BUCKETS = (1, 10000, 1000000, 4000000, 10000000, 40000000)
# meshplane's own SLI: finer at the low end, where a healthy mesh propagates
_PROPAGATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _TypeMetrics:
    __slots__ = ("config_size", "push_time", "pushes", "send_errors")

    def __init__(self, m: Metrics, short_type: str) -> None:
        self.pushes = m.pushes.labels(type=short_type)
        self.send_errors = m.pushes.labels(type=f"{short_type}_senderr")
        self.push_time = m.push_time.labels(type=short_type)
        self.config_size = m.config_size.labels(type=short_type)


_SAMPLE = re.compile(r"^(# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)(.*)$")


class Metrics:
    """Every metric the push queue and the ADS server record, registered on one registry.

    Other packages (the registry, the multicluster controller) may register their own metrics on
    `registry` so that `/metrics` serves them all.
    """

    def __init__(self, registry: prometheus_client.CollectorRegistry | None = None) -> None:
        self.registry = registry or prometheus_client.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.xds_clients = prometheus_client.Gauge(
            "pilot_xds", "Number of endpoints connected to this pilot using XDS.", ["version"], registry=r
        )
        self.pushes = prometheus_client.Counter(
            "pilot_xds_pushes", "Pilot build and send errors for lds, rds, cds and eds.", ["type"], registry=r
        )
        self.push_time = prometheus_client.Histogram(
            "pilot_xds_push_time",
            "Total time in seconds Pilot takes to push lds, rds, cds and eds.",
            ["type"],
            buckets=_PUSH_BUCKETS,
            registry=r,
        )
        self.send_time = prometheus_client.Histogram(
            "pilot_xds_send_time",
            "Total time in seconds Pilot takes to send generated configuration.",
            buckets=_PUSH_BUCKETS,
            registry=r,
        )
        # Ends at the proxy's ACK of every type the push sent it (push/propagation.py); Istio's
        # ends at the send.
        self.convergence = prometheus_client.Histogram(
            "pilot_proxy_convergence_time",
            "Delay in seconds between config change and a proxy receiving all required configuration.",
            buckets=_CONVERGE_BUCKETS,
            registry=r,
        )
        self.queue_time = prometheus_client.Histogram(
            "pilot_proxy_queue_time",
            "Time in seconds, a proxy is in the push queue before being dequeued.",
            buckets=_CONVERGE_BUCKETS,
            registry=r,
        )
        self.debounce_time = prometheus_client.Histogram(
            "pilot_debounce_time",
            "Delay in seconds between the first config enters debouncing and the merged push request is "
            "pushed into the push queue.",
            buckets=_PUSH_BUCKETS,
            registry=r,
        )
        self.context_init = prometheus_client.Histogram(
            "pilot_pushcontext_init_seconds",
            "Total time in seconds Pilot takes to init pushContext.",
            buckets=_INIT_BUCKETS,
            registry=r,
        )
        self.push_triggers = prometheus_client.Counter(
            "pilot_push_triggers",
            "Total number of times a push was triggered, labeled by reason for the push.",
            ["type"],
            registry=r,
        )
        self.total_rejects = prometheus_client.Counter(
            "pilot_total_xds_rejects",
            "Total number of XDS responses from pilot rejected by proxy.",
            ["type"],
            registry=r,
        )
        # Istio keeps these per-type gauges for backwards compatibility (labels node, err).
        self.type_rejects = {
            t: prometheus_client.Gauge(
                f"pilot_xds_{t}_reject", f"Pilot rejected {t.upper()} configs.", ["node", "err"], registry=r
            )
            for t in ("cds", "eds", "lds", "rds")
        }
        self.expired_nonce = prometheus_client.Counter(
            "pilot_xds_expired_nonce",
            "Total number of XDS requests with an expired nonce.",
            ["type"],
            registry=r,
        )
        self.write_timeouts = prometheus_client.Counter(
            "pilot_xds_write_timeout", "Pilot XDS response write timeouts.", registry=r
        )
        self.internal_errors = prometheus_client.Counter(
            "pilot_total_xds_internal_errors", "Total number of internal XDS errors in pilot.", registry=r
        )
        self.config_size = prometheus_client.Histogram(
            "pilot_xds_config_size_bytes",
            "Distribution of configuration sizes pushed to clients",
            ["type"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )

        self.propagation = prometheus_client.Histogram(
            "meshplane_config_propagation_seconds",
            "Delay in seconds between a change reaching the control plane's watch of a cluster and the "
            "last affected proxy ACKing the push of that xDS type that carried it.",
            ["cluster", "type"],
            buckets=_PROPAGATION_BUCKETS,
            registry=r,
        )
        self.propagation_from_write = prometheus_client.Histogram(
            "meshplane_config_propagation_from_write_seconds",
            "Delay in seconds between a change's write (its object's newest managedFields time, whole "
            "seconds) and the last affected proxy ACKing the push of that xDS type that carried it.",
            ["cluster", "type"],
            buckets=_PROPAGATION_BUCKETS,
            registry=r,
        )

        # labelled children per xDS type, looked up once (labels() takes a lock each call)
        self.by_type = {t: _TypeMetrics(self, t) for t in ("cds", "eds", "lds", "rds")}

    def for_type(self, short_type: str) -> _TypeMetrics:
        m = self.by_type.get(short_type)
        if m is None:
            m = self.by_type[short_type] = _TypeMetrics(self, short_type)
        return m

    def record_reject(self, short_type: str, node: str, err: str) -> None:
        """One NACK: `pilot_total_xds_rejects{type}` and Istio's per-type reject gauge."""
        self.total_rejects.labels(type=short_type).inc()
        gauge = self.type_rejects.get(short_type)
        if gauge is not None:
            gauge.labels(node=node, err=err).inc()

    def render(self) -> bytes:
        """Prometheus text format with Istio's counter names (no `_total`, no `_created`)."""
        counters = {m.name for m in self.registry.collect() if m.type == "counter"}
        created = {m.name + "_created" for m in self.registry.collect() if m.type in ("counter", "histogram")}
        out: list[str] = []
        for line in exposition.generate_latest(self.registry).decode().splitlines():
            m = _SAMPLE.match(line)
            if m is None:
                out.append(line)
                continue
            prefix, name, rest = m.group(1) or "", m.group(2), m.group(3)
            if name in created:
                continue
            if name.endswith("_total") and name[: -len("_total")] in counters:
                name = name[: -len("_total")]
            out.append(prefix + name + rest)
        return ("\n".join(out) + "\n").encode()
