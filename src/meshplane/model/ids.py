"""Typed ids: a cluster, a service hostname, a proxy (Envoy node id)."""

from __future__ import annotations

from typing import NewType

ClusterId = NewType("ClusterId", str)
Hostname = NewType("Hostname", str)
ProxyId = NewType("ProxyId", str)

DEFAULT_DOMAIN = "cluster.local"


def service_hostname(name: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> Hostname:
    """`NAME.NAMESPACE.svc.cluster.local`, the key services are merged on across clusters."""
    return Hostname(f"{name}.{namespace}.svc.{domain}")
