"""The pod's `proxy.istio.io/config` annotation (a ProxyConfig in YAML or JSON), as far as meshplane
applies it: `proxyMetadata`, whose entries Istio's template puts as env on both `istio-proxy` and
`istio-init` (e.g. `ISTIO_META_DNS_CAPTURE: "true"` turns on the agent's DNS proxy and istio-init's
DNS redirection). Any other ProxyConfig field is refused with its path named rather than ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from meshplane.webhooks import errors

ANNOTATION = "proxy.istio.io/config"
_PATH = f"metadata.annotations[{ANNOTATION}]"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def metadata(pod: Mapping[str, Any]) -> dict[str, str]:
    """The annotation's proxyMetadata ({} without the annotation)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(ANNOTATION)
    if raw is None:
        return {}
    try:
        doc = yaml.safe_load(str(raw))
    except yaml.YAMLError as e:
        raise errors.WebhookError(f"{_PATH}: not YAML or JSON: {e}") from e
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise errors.WebhookError(f"{_PATH}: expected a ProxyConfig mapping")
    unsupported = sorted(str(k) for k in doc if k != "proxyMetadata")
    if unsupported:
        raise errors.WebhookError(
            f"{_PATH}.{unsupported[0]}: not supported by meshplane (only proxyMetadata)"
        )
    meta = doc.get("proxyMetadata") or {}
    if not isinstance(meta, Mapping):
        raise errors.WebhookError(f"{_PATH}.proxyMetadata: expected a mapping")
    out: dict[str, str] = {}
    for k, v in meta.items():
        if not isinstance(k, str) or not _ENV_NAME.fullmatch(k):
            raise errors.WebhookError(f"{_PATH}.proxyMetadata: {k!r} is not an environment variable name")
        if isinstance(v, bool):
            v = "true" if v else "false"
        if not isinstance(v, str | int | float):
            raise errors.WebhookError(f"{_PATH}.proxyMetadata.{k}: expected a string")
        out[k] = str(v)
    return out
