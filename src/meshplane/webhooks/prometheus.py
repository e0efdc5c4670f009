"""Istio's Prometheus merge on injected pods (pkg/kube/inject/inject.go `applyPrometheusMerge`).

An injected pod is scraped on the agent's status port (`prometheus.io/port: "15020"`,
`prometheus.io/path: /stats/prometheus`, `prometheus.io/scrape: "true"`), where the agent serves
its own metrics, Envoy's and, when the pod asked to be scraped itself, the app's: the pod's own
`prometheus.io/{scrape,port,path}` move into the sidecar's `ISTIO_PROMETHEUS_ANNOTATIONS` env (JSON
`{"scrape","path","port"}`) and every variant of those annotations is replaced by the sidecar's.
Nothing happens when the pod says `prometheus.io/scrape: "false"`, when it opts out with
`prometheus.istio.io/merge-metrics: "false"`, or when it already points at the status port (a
re-injected pod). meshplane has no mesh-wide `enablePrometheusMerge`: Istio's default (on) applies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

SCRAPE = "prometheus.io/scrape"
PORT = "prometheus.io/port"
PATH = "prometheus.io/path"
MERGE = "prometheus.istio.io/merge-metrics"
ENV = "ISTIO_PROMETHEUS_ANNOTATIONS"
STATS_PATH = "/stats/prometheus"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _sanitize(key: str) -> str:
    """Istio compares annotation keys as Prometheus label names (strutil.SanitizeLabelName), so
    `prometheus.io.scrape` and `prometheus.io/scrape` are the same annotation."""
    return _INVALID.sub("_", key)


def _find(annotations: Mapping[str, str], key: str) -> str | None:
    want = _sanitize(key)
    for k, v in annotations.items():
        if _sanitize(k) == want:
            return v
    return None


def _scrape_wanted(annotations: Mapping[str, str]) -> bool:
    """getPrometheusScrape: false only when the scrape annotation parses as false."""
    for k, v in annotations.items():
        if _sanitize(k) == _sanitize(SCRAPE) and (v in _TRUE or v in _FALSE):
            return v in _TRUE
    return True


def _merge_enabled(annotations: Mapping[str, str]) -> bool:
    value = annotations.get(MERGE)
    return value is None or value not in _FALSE


def merge(annotations: Mapping[str, str], status_port: int) -> tuple[dict[str, str], str | None]:
    """(the pod's annotations after the merge, the sidecar's ISTIO_PROMETHEUS_ANNOTATIONS or None).

    The annotations come back unchanged when the merge does not apply."""
    out = dict(annotations)
    if not status_port or not _scrape_wanted(out) or not _merge_enabled(out):
        return out, None
    target = str(status_port)
    if _find(out, PORT) == target:
        return out, None  # already pointed at the agent: set by the user or a re-injection
    scrape = {
        "scrape": _find(out, SCRAPE) or "",
        "path": _find(out, PATH) or "",
        "port": _find(out, PORT) or "",
    }
    env = json.dumps(scrape, separators=(",", ":")) if any(scrape.values()) else None
    names = {_sanitize(k) for k in (SCRAPE, PORT, PATH)}
    out = {k: v for k, v in out.items() if _sanitize(k) not in names}
    out.update({PORT: target, PATH: STATS_PATH, SCRAPE: "true"})
    return out, env
