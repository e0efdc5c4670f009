"""The remote profile's way to the primary: a selectorless `istiod` Service plus an EndpointSlice
to remotePilotAddress, or an ExternalName Service when the address is a host name (SPEC §1)."""

from __future__ import annotations

import ipaddress
from typing import Any

from meshplane.installer import config
from meshplane.runtime import ipaddr

MANAGED_BY = "meshplane"


def istiod_service(cfg: config.InstallConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ports": [
            {"port": 15012, "name": "tcp-istiod", "protocol": "TCP"},
            {"port": 443, "targetPort": 15017, "name": "tcp-webhook", "protocol": "TCP"},
        ]
    }
    if cfg.remote_pilot_address and not ipaddr.is_ip(cfg.remote_pilot_address):
        # webhooks cannot call ExternalName services (SPEC §10.3); Istio renders it anyway, so do we
        spec["type"] = "ExternalName"
        spec["externalName"] = cfg.remote_pilot_address
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": cfg.istiod_name,
            "namespace": cfg.namespace,
            "labels": {"app.kubernetes.io/name": "istiod"},
        },
        "spec": spec,
    }


def istiod_endpointslice(cfg: config.InstallConfig) -> dict[str, Any] | None:
    """None when remotePilotAddress is not an IP (the ExternalName Service carries it instead)."""
    addr = cfg.remote_pilot_address
    if not addr or not ipaddr.is_ip(addr):
        return None
    family = "IPv6" if ipaddress.ip_address(addr).version == 6 else "IPv4"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": cfg.istiod_name,
            "namespace": cfg.namespace,
            "labels": {
                "kubernetes.io/service-name": cfg.istiod_name,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                "app.kubernetes.io/name": "istiod",
            },
        },
        "addressType": family,
        "endpoints": [{"addresses": [str(ipaddress.ip_address(addr))]}],
        "ports": [
            {"name": "tcp-istiod", "port": 15012, "protocol": "TCP"},
            {"name": "tcp-webhook", "port": 15017, "protocol": "TCP"},
        ],
    }
