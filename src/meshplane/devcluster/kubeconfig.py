"""Kubeconfig documents for a dev cluster: cluster, user and context all named after it."""

from __future__ import annotations

import base64

import yaml

from meshplane.kube import kubeconfig as kube_kubeconfig
from meshplane.runtime.jsonobj import Obj


def build(name: str, server: str, ca_pem: bytes, token: str) -> Obj:
    return kube_kubeconfig.build(name, server, base64.b64encode(ca_pem).decode(), token)


def merge(configs: list[Obj], current: str | None = None) -> Obj:
    """One kubeconfig holding every cluster/user/context of `configs` (kubectl's rule: first wins)."""
    return kube_kubeconfig.merge(configs, current)


def dump(cfg: Obj) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
