"""Istio's WorkloadSelector (`selector.matchLabels`, istio/api type/v1beta1/selector.proto).

Validation as pilot/pkg/config/validation (validateWorkloadSelector): keys are label names,
values label values; a `*` is not allowed in either. An empty or absent selector selects every
workload in the policy's namespace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from meshplane.model import crfields

_EMPTY: Mapping[str, str] = MappingProxyType({})
# Kubernetes label key: optional DNS prefix `/`, then a name of up to 63 characters
_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$")
_VALUE = re.compile(rf"^({_NAME})?$")


def parse(r: crfields.Reader, spec: Mapping[str, Any], path: str = "spec") -> Mapping[str, str]:
    """`spec.selector.matchLabels`, validated; an empty mapping when absent."""
    raw = r.obj(spec, "selector", path)
    spath = f"{path}.selector"
    unknown = sorted(set(raw) - {"matchLabels"})
    if unknown:
        raise r.fail(f"{spath}.{unknown[0]}", "unknown field (a selector has matchLabels only)")
    labels = r.labels(raw, "matchLabels", spath)
    for k, v in labels.items():
        lpath = f"{spath}.matchLabels.{k}"
        if "*" in k or not _KEY.match(k):
            raise r.fail(lpath, f"invalid label key {k!r:.80}")
        if "*" in v or not _VALUE.match(v):
            raise r.fail(lpath, f"invalid label value {v!r:.80}")
    return MappingProxyType(labels) if labels else _EMPTY


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Every selector label is on the workload (an empty selector picks all)."""
    return all(labels.get(k) == v for k, v in selector.items())
