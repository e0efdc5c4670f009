"""Built-in profiles: the base trees user input is overlaid on (Istio's manifests/profiles/*.yaml, trimmed).

meshplane's `default` has no `istio-ingressgateway` (Istio's does): the primary-remote guide only needs
the east-west gateway, which it installs separately with `profile: empty`. Add an ingress gateway under
`components.ingressGateways` when you want one. `minimal` is therefore the same as `default`.
"""

from __future__ import annotations

import copy
from typing import Any

from meshplane import __version__
from meshplane.installer import iop

DEFAULT_HUB = "docker.io/meshplane"
DEFAULT_TAG = __version__
PILOT_IMAGE = "pilot"
PROXY_IMAGE = "proxyv2"

_GLOBAL: dict[str, Any] = {
    "hub": DEFAULT_HUB,
    "tag": DEFAULT_TAG,
    "istioNamespace": "istio-system",
    "jwtPolicy": "third-party-jwt",
    "pilotCertProvider": "istiod",
    "sds": {"token": {"aud": "istio-ca"}},
    "proxy": {"image": PROXY_IMAGE, "clusterDomain": "cluster.local", "statusPort": 15020},
    "logging": {"level": "default:info"},
    "imagePullPolicy": "IfNotPresent",
}

_BASE: dict[str, Any] = {
    "hub": DEFAULT_HUB,
    "tag": DEFAULT_TAG,
    "namespace": "istio-system",
    "meshConfig": {"rootNamespace": "istio-system", "trustDomain": "cluster.local"},
    "components": {"base": {"enabled": True}, "pilot": {"enabled": True}},
    "values": {
        "global": _GLOBAL,
        "pilot": {"replicaCount": 1, "image": PILOT_IMAGE},
        "istiodRemote": {"enabled": False, "injectionPath": "/inject"},
        "gateways": {"istio-ingressgateway": {"injectionTemplate": "gateway"}},
    },
}

_OVERLAYS: dict[str, dict[str, Any]] = {
    "default": {},
    "minimal": {},
    "remote": {"values": {"profile": "remote", "istiodRemote": {"enabled": True}}},
    "empty": {"components": {"base": {"enabled": False}, "pilot": {"enabled": False}}},
}

# Real Istio profiles meshplane does not implement: named so the error can say so.
ISTIO_ONLY = ("demo", "ambient", "preview", "openshift", "openshift-ambient", "stable", "external")

NAMES = tuple(_OVERLAYS)


def tree(name: str) -> dict[str, Any]:
    """The profile's full spec tree (a fresh copy)."""
    out: dict[str, Any] = iop.merge(copy.deepcopy(_BASE), _OVERLAYS[name])
    return out
