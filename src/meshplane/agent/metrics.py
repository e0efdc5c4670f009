"""The agent's own Prometheus metrics, named as Istio's pilot-agent names them (`istio_agent_` prefix:
pilot/cmd/pilot-agent/status/server.go `initializeMonitoring`, pkg/istio-agent/metrics/metrics.go).

Served merged with Envoy's on the status port (statusserver.py). Only series meshplane's agent can
fill are registered: process metrics, scrapes, the CA requests, the certificate's remaining
lifetime and the startup duration; Istio's Go runtime and xDS-proxy counters have no counterpart.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from meshplane.agent import rotation, workloadcert
from meshplane.runtime import clock as runclock

PREFIX = "istio_agent"
CSR = "csr"  # Istio's request_type for the CA call


class AgentMetrics:
    def __init__(self, store: workloadcert.Store, clock: runclock.Clock) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        self._started = clock.monotonic()
        ProcessCollector(namespace=PREFIX, registry=self.registry)
        self.scrapes = Counter(f"{PREFIX}_scrapes", "The total number of scrapes.", registry=self.registry)
        self.scrape_failures = Counter(
            f"{PREFIX}_scrape_failures",
            "The total number of failed scrapes.",
            ["type"],
            registry=self.registry,
        )
        self.outgoing = Counter(
            f"{PREFIX}_num_outgoing_requests",
            "Number of total outgoing requests (e.g. to a token exchange server, CA, etc.)",
            ["request_type"],
            registry=self.registry,
        )
        self.failed_outgoing = Counter(
            f"{PREFIX}_num_failed_outgoing_requests",
            "Number of failed outgoing requests (e.g. to a token exchange server, CA, etc.)",
            ["request_type"],
            registry=self.registry,
        )
        self.startup = Gauge(
            f"{PREFIX}_startup_duration_seconds",
            "The time from the process starting to being marked ready.",
            registry=self.registry,
        )
        expiry = Gauge(
            f"{PREFIX}_cert_expiry_seconds",
            "The time remaining, in seconds, before the certificate chain will expire. "
            "A negative value indicates the cert is expired.",
            ["resource_name"],
            registry=self.registry,
        )
        expiry.labels("default").set_function(lambda: self._remaining(store))
        self._ready_seen = False

    def _remaining(self, store: workloadcert.Store) -> float:
        cert = store.current
        return cert.not_after - self._clock.wall() if cert is not None else 0.0

    def ready(self) -> None:
        """The proxy was found ready: the first time sets the startup duration."""
        if not self._ready_seen:
            self._ready_seen = True
            self.startup.set(self._clock.monotonic() - self._started)

    def counting(self, source: rotation.CertSource) -> rotation.CertSource:
        """`source` with its CA calls counted (outgoing and failed requests, type `csr`)."""
        return _CountingSource(source, self)


class _CountingSource:
    def __init__(self, source: rotation.CertSource, m: AgentMetrics) -> None:
        self._source = source
        self._m = m

    async def create(self, csr_pem: bytes, ttl_seconds: int) -> list[str]:
        self._m.outgoing.labels(CSR).inc()
        try:
            chain: Sequence[str] = await self._source.create(csr_pem, ttl_seconds)
        except Exception:
            self._m.failed_outgoing.labels(CSR).inc()
            raise
        return list(chain)
