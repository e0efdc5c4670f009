"""The injection URL path (`/inject/cluster/C/net/N`): proxy env overrides per remote cluster (SPEC §6).

Same rules as Istio's parseInjectEnvs: trailing `/` trimmed; after `/inject/` come `key/value` pairs
(`cluster` → ISTIO_META_CLUSTER_ID, `net` → ISTIO_META_NETWORK, any other key upper-cased as the env
name); `--slash--` in a value means `/`; a dangling key is ignored with a warning; the deprecated
`/inject/:ENV:K=V:ENV:K2=V2` form is still read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

URL_PARAMETER_TO_ENV = {"cluster": "ISTIO_META_CLUSTER_ID", "net": "ISTIO_META_NETWORK"}


@dataclass(frozen=True, slots=True)
class InjectEnvs:
    envs: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _pairs(path: str) -> list[str]:
    parts = path.split("/", 2)
    if len(parts) < 3:
        return []
    rest = parts[2]
    if rest.startswith(":ENV:"):
        out: list[str] = []
        for pair in rest.split(":ENV:")[1:]:
            key, sep, value = pair.partition("=")
            if key and sep:
                out += [key, value]
        return out
    items = rest.split("/")
    return [v.replace("--slash--", "/") if i % 2 else v for i, v in enumerate(items)]


def parse(path: str) -> InjectEnvs:
    items = _pairs(path.removesuffix("/"))
    envs: dict[str, str] = {}
    warnings: list[str] = []
    for i in range(0, len(items), 2):
        key = items[i]
        if i == len(items) - 1:
            warnings.append(f"odd number of inject env entries, ignoring the last key {key!r}")
            log.warning("injection path has a dangling key path=%s key=%s", path, key)
            break
        env = URL_PARAMETER_TO_ENV.get(key, key.upper())
        if env:
            envs[env] = items[i + 1]
    return InjectEnvs(envs, tuple(warnings))
