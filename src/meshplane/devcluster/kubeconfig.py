"""Kubeconfig documents for a dev cluster: cluster, user and context all named after it."""

from __future__ import annotations

import base64
from typing import Any

import yaml

Obj = dict[str, Any]


def build(name: str, server: str, ca_pem: bytes, token: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def merge(configs: list[Obj], current: str | None = None) -> Obj:
    """One kubeconfig holding every cluster/user/context of `configs` (later entries win)."""
    out: Obj = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "users": [],
        "contexts": [],
    }
    for section in ("clusters", "users", "contexts"):
        by_name: dict[str, Obj] = {}
        for cfg in configs:
            for entry in cfg.get(section) or []:
                by_name[entry["name"]] = entry
        out[section] = list(by_name.values())
    out["current-context"] = current or (configs[0].get("current-context", "") if configs else "")
    return out


def dump(cfg: Obj) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
