"""A lightkube client from kubectl's settings: --kubeconfig, else every file of KUBECONFIG (the first
definition of a name wins, as kubectl merges them), else ~/.kube/config; --context, else the current one.

The CLI commands of the installer build their clients here. (The lead's `kube/client.py` factory can
replace this once it lands; the behaviour is the same.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx2
import lightkube
import yaml
from lightkube.config import kubeconfig as lk_config
from lightkube.core import exceptions as lk_exceptions

from meshplane.installer import errors

DEFAULT_KUBECONFIG = "~/.kube/config"
TIMEOUT = httpx2.Timeout(30.0, connect=10.0)


def kubeconfig_paths(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return paths or [Path(DEFAULT_KUBECONFIG).expanduser()]


def _merge(docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": []}
    seen: dict[str, set[str]] = {k: set() for k in ("clusters", "contexts", "users")}
    for doc in docs:
        if not merged.get("current-context") and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
        for key in ("clusters", "contexts", "users"):
            for item in doc.get(key) or []:
                if isinstance(item, dict) and str(item.get("name")) not in seen[key]:
                    seen[key].add(str(item.get("name")))
                    merged[key].append(item)
    return merged


def load(kubeconfig: str | None = None, context: str | None = None) -> lk_config.SingleConfig:
    paths = kubeconfig_paths(kubeconfig)
    existing = [p for p in paths if p.is_file()]
    if not existing:
        raise errors.ClusterError(f"no kubeconfig found (looked at {', '.join(str(p) for p in paths)})")
    docs: list[Mapping[str, Any]] = []
    for p in existing:
        try:
            doc = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise errors.ClusterError(f"cannot read kubeconfig {p}: {e}") from e
        if not isinstance(doc, dict):
            raise errors.ClusterError(f"kubeconfig {p} is not a mapping")
        docs.append(doc)
    try:
        cfg = lk_config.KubeConfig.from_dict(_merge(docs), fname=existing[0]).get(context_name=context)
    except (lk_exceptions.ConfigError, KeyError, TypeError, ValueError, AttributeError) as e:
        where = f"context {context!r}" if context else "the current context"
        raise errors.ClusterError(f"kubeconfig {existing[0]}: cannot use {where}: {e}") from e
    if cfg is None:
        raise errors.ClusterError(f"kubeconfig {existing[0]}: no current context; pass --context")
    return cfg


def client(cfg: lk_config.SingleConfig) -> lightkube.AsyncClient:
    return lightkube.AsyncClient(config=cfg, timeout=TIMEOUT, field_manager="meshplane")


def describe(cfg: lk_config.SingleConfig) -> str:
    return f"{cfg.cluster.server} (context {cfg.context_name})"
