"""Client factory: kubeconfig files and contexts, in-cluster config, and untrusted remote-secret kubeconfigs.

Every Kubernetes API call in meshplane goes through a `lightkube.AsyncClient` built here, so the
control plane never knows whether it talks to a dev cluster or a real one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx2
import lightkube
import yaml
from lightkube.config import kubeconfig as lk_config
from lightkube.core import exceptions as lk_exceptions

from meshplane.kube import errors
from meshplane.kube import kubeconfig as kubeconfig_mod
from meshplane.runtime import podroot

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_KUBECONFIG = "~/.kube/config"

# Options a remote secret's kubeconfig may not use unless allowed (Istio's
# PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS): they read local files or run local commands.
UNSAFE_OPTIONS = (
    "exec",
    "auth-provider",
    "tokenFile",
    "client-certificate",
    "client-key",
    "certificate-authority",
)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise errors.KubeconfigError(f"cannot read kubeconfig {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise errors.KubeconfigError(f"kubeconfig {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise errors.KubeconfigError(f"kubeconfig {path} is not a mapping")
    return data


def kubeconfig_paths(explicit: str | None) -> list[Path]:
    """The files to read: --kubeconfig, else every entry of KUBECONFIG, else ~/.kube/config."""
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return paths or [Path(DEFAULT_KUBECONFIG).expanduser()]


def load_file_config(kubeconfig: str | None = None, context: str | None = None) -> lk_config.SingleConfig:
    """The SingleConfig for `context` (or the current one) from kubectl's files."""
    paths = kubeconfig_paths(kubeconfig)
    existing = [p for p in paths if p.is_file()]
    if not existing:
        raise errors.KubeconfigError(f"no kubeconfig found (looked at {', '.join(map(str, paths))})")
    doc = kubeconfig_mod.merge(_read_yaml(p) for p in existing)
    return single_config(doc, context, fname=existing[0], source=str(existing[0]))


def single_config(
    doc: Mapping[str, Any], context: str | None, *, fname: Path | None = None, source: str = "kubeconfig"
) -> lk_config.SingleConfig:
    try:
        kc = lk_config.KubeConfig.from_dict(dict(doc), fname=fname)
        cfg = kc.get(context_name=context)
    except lk_exceptions.ConfigError as e:
        raise errors.KubeconfigError(f"{source}: {e}") from e
    except KeyError as e:
        raise errors.KubeconfigError(f"{source}: context refers to a missing entry {e}") from e
    except (TypeError, ValueError, AttributeError) as e:
        raise errors.KubeconfigError(f"{source}: malformed kubeconfig: {e}") from e
    if cfg is None:
        raise errors.KubeconfigError(f"{source}: no context")
    return cfg


def in_cluster_available() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and podroot.path(SERVICE_ACCOUNT_DIR).is_dir()


def load_in_cluster_config() -> lk_config.SingleConfig:
    """In-cluster config: the pod's service-account token, CA and namespace (through the pod root)."""
    try:
        kc = lk_config.KubeConfig.from_service_account(podroot.path(SERVICE_ACCOUNT_DIR))
    except (lk_exceptions.ConfigError, KeyError) as e:
        raise errors.KubeconfigError(f"in-cluster config unavailable: {e}") from e
    cfg = kc.get()
    assert cfg is not None
    return cfg


def load_config(kubeconfig: str | None = None, context: str | None = None) -> lk_config.SingleConfig:
    """In-cluster config when no flag nor KUBECONFIG is given and we run in a pod; else kubectl's files."""
    if kubeconfig is None and context is None and not os.environ.get("KUBECONFIG") and in_cluster_available():
        return load_in_cluster_config()
    return load_file_config(kubeconfig, context)


def parse_untrusted_kubeconfig(
    text: str | bytes, *, source: str, allowed_options: Iterable[str] = ()
) -> lk_config.SingleConfig:
    """Validate a remote secret's kubeconfig (Istio's NewUntrustedRestConfig); return its current context.

    Rejects what would read local files or run commands, and certificate data that is not PEM, so a
    bad secret fails here with a clear reason instead of later with a TLS error.
    """
    allowed = set(allowed_options)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise errors.KubeconfigError(f"{source}: kubeconfig is not valid YAML") from e
    if not isinstance(doc, dict):
        raise errors.KubeconfigError(f"{source}: kubeconfig is not a mapping")
    for key in ("clusters", "contexts"):
        if not isinstance(doc.get(key), list) or not doc[key]:
            raise errors.KubeconfigError(f"{source}: kubeconfig has no {key}")
    context_raw = _named(doc["contexts"], doc.get("current-context"), "context")
    user_raw = _named(doc.get("users") or [], context_raw.get("user"), "user")
    cluster_raw = _named(doc["clusters"], context_raw.get("cluster"), "cluster")
    for option in UNSAFE_OPTIONS:
        if option not in allowed and (option in user_raw or option in cluster_raw):
            raise errors.KubeconfigError(
                f"{source}: kubeconfig option {option!r} is not allowed in a remote secret "
                "(allow it with PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS)"
            )
    cfg = single_config(doc, None, source=source)
    server = cfg.cluster.server or ""
    if not server.startswith(("https://", "http://")):
        raise errors.KubeconfigError(f"{source}: cluster server {server!r} is not an http(s) URL")
    ca = cfg.cluster.certificate_auth_data
    if ca:
        try:
            pem = base64.b64decode(ca, validate=True).decode()
            ssl.create_default_context(cadata=pem)
        except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as e:
            raise errors.KubeconfigError(f"{source}: certificate-authority-data is not a valid PEM CA") from e
    return cfg


def _named(items: list[Any], name: str | None, kind: str) -> Mapping[str, Any]:
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(kind) or {}
            return value if isinstance(value, dict) else {}
    return {}


def make_client(
    config: lk_config.SingleConfig, *, timeout: float = 15.0, field_manager: str = "meshplane"
) -> lightkube.AsyncClient:
    """An AsyncClient for one cluster. Building it reads CA files, so call it off the event loop."""
    try:
        return lightkube.AsyncClient(
            config=config,
            timeout=httpx2.Timeout(timeout),
            lazy=True,
            trust_env=False,
            field_manager="meshplane",
        )
    except (lk_exceptions.ConfigError, ssl.SSLError, OSError, ValueError) as e:
        raise errors.KubeconfigError(f"cannot build a client for {config.cluster.server}: {e}") from e


async def client_from_untrusted(
    value: str | bytes, source: str, allowed_options: Iterable[str] = ()
) -> lightkube.AsyncClient:
    """Validate a remote secret's kubeconfig and build its client (off the event loop)."""
    cfg = parse_untrusted_kubeconfig(value, source=source, allowed_options=allowed_options)
    return await asyncio.to_thread(make_client, cfg)
