"""The installer's clients, from kubectl's settings through the shared factory in `kube.client`
(--kubeconfig, else every file of KUBECONFIG, else ~/.kube/config; --context, else the current one).
Errors become the installer's ClusterError so the CLI reports them like every other install error.
"""

from __future__ import annotations

import lightkube
from lightkube.config import kubeconfig as lk_config

from meshplane.installer import errors
from meshplane.kube import client as kube_client
from meshplane.kube import errors as kube_errors

TIMEOUT = 30.0


def load(kubeconfig: str | None = None, context: str | None = None) -> lk_config.SingleConfig:
    try:
        return kube_client.load_file_config(kubeconfig, context)
    except kube_errors.KubeconfigError as e:
        raise errors.ClusterError(str(e)) from e


def client(cfg: lk_config.SingleConfig) -> lightkube.AsyncClient:
    try:
        return kube_client.make_client(cfg, timeout=TIMEOUT)
    except kube_errors.KubeconfigError as e:
        raise errors.ClusterError(str(e)) from e


def describe(cfg: lk_config.SingleConfig) -> str:
    return f"{cfg.cluster.server} (context {cfg.context_name})"
