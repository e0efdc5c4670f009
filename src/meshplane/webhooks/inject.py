"""Sidecar injection of one pod: policy, the proxy env overrides of the URL path, the merge of the
template into the pod, the status annotation, and the JSON patch from the old pod to the new."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.model import injection
from meshplane.runtime import jsonobj
from meshplane.runtime import logging as rlog
from meshplane.webhooks import injectpath, jsonpatch, policy, prometheus, sidecar
from meshplane.webhooks.settings import InjectionSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Result:
    """`patch` is None when the pod is admitted unchanged (`reason` says why)."""

    patch: list[dict[str, Any]] | None
    reason: str
    pod: dict[str, Any] | None = None


def proxy_envs(pod: Mapping[str, Any], s: InjectionSettings, path: str) -> dict[str, str]:
    """Env overrides: istiod's values < URL path parameters < the pod's network label (network only)."""
    envs = dict(injectpath.parse(path).envs)
    cluster = envs.get("ISTIO_META_CLUSTER_ID") or s.cluster_name
    network = envs.get("ISTIO_META_NETWORK") or s.network
    labels = (pod.get("metadata") or {}).get("labels") or {}
    label = labels.get(injection.NETWORK_LABEL)
    if isinstance(label, str):
        network = label
    if cluster:
        envs["ISTIO_META_CLUSTER_ID"] = cluster
    if network:
        envs["ISTIO_META_NETWORK"] = network
    return envs


def _status(injected: sidecar.Injected, s: InjectionSettings) -> str:
    """Istio's SidecarInjectionStatus JSON (Go field order; empty lists are null)."""
    status = {
        "initContainers": [c["name"] for c in injected.init_containers] or None,
        "containers": [c["name"] for c in injected.containers] or None,
        "volumes": [v["name"] for v in injected.volumes] or None,
        "imagePullSecrets": list(s.image_pull_secrets) or None,
        "revision": s.revision or "default",
    }
    return json.dumps(status, separators=(",", ":"))


def _merge_named(existing: list[Any], added: list[dict[str, Any]], user_wins: bool) -> list[Any]:
    """Append `added` items; one the pod already has by name is merged (its own fields win)."""
    out = list(existing)
    index = {item.get("name"): i for i, item in enumerate(out) if isinstance(item, dict)}
    for item in added:
        i = index.get(item["name"])
        if i is None:
            out.append(item)
        elif user_wins:
            mine = {k: v for k, v in out[i].items() if not (k == "image" and v == "auto")}
            merged = {**item, **mine}
            out.pop(i)
            out.append(merged)  # the proxy goes last, as Istio's reorderPod does
            index = {x.get("name"): j for j, x in enumerate(out) if isinstance(x, dict)}
    return out


def _add_env(containers: list[Any], name: str, key: str, value: str) -> None:
    """Append env `key` to container `name` (Istio appends it after templating, as here)."""
    for c in containers:
        if isinstance(c, dict) and c.get("name") == name:
            env = [e for e in c.get("env") or [] if not (isinstance(e, dict) and e.get("name") == key)]
            c["env"] = [*env, {"name": key, "value": value}]


def inject(pod: Mapping[str, Any], namespace: str, s: InjectionSettings, path: str = "/inject") -> Result:
    """Decide and, when injecting, build the patched pod and its JSON patch (pure)."""
    meta = jsonobj.as_mapping(pod.get("metadata"))
    namespace = meta.get("namespace") or namespace
    decision = policy.decide(pod, namespace)
    name = meta.get("name") or f"{meta.get('generateName') or ''}*"
    if not decision.inject:
        log.info("skipping injection %s", rlog.kv(pod=f"{namespace}/{name}", reason=decision.reason))
        return Result(None, decision.reason)
    original = copy.deepcopy(dict(pod))
    original.pop("status", None)
    new = copy.deepcopy(original)
    new_meta = new.setdefault("metadata", {})
    managed = new_meta.pop("managedFields", None)
    dm = sidecar.deploy_meta(new, namespace)
    envs = proxy_envs(new, s, path)
    injected = sidecar.render(new, s, dm, envs)
    spec = new.setdefault("spec", {})
    spec["initContainers"] = _merge_named(spec.get("initContainers") or [], injected.init_containers, True)
    spec["containers"] = _merge_named(spec.get("containers") or [], injected.containers, True)
    spec["volumes"] = _merge_named(spec.get("volumes") or [], injected.volumes, False)
    if s.image_pull_secrets:
        have = {x.get("name") for x in spec.get("imagePullSecrets") or [] if isinstance(x, dict)}
        spec["imagePullSecrets"] = list(spec.get("imagePullSecrets") or []) + [
            {"name": n} for n in s.image_pull_secrets if n not in have
        ]
    new_meta["labels"] = {**(new_meta.get("labels") or {}), **injected.labels}
    new_meta["annotations"] = {
        **(new_meta.get("annotations") or {}),
        **injected.annotations,
        injection.STATUS_ANNOTATION: _status(injected, s),
        injection.REV_LABEL: s.revision or "default",
    }
    new_meta["annotations"], scrape_env = prometheus.merge(new_meta["annotations"], s.status_port)
    if scrape_env is not None:
        _add_env(spec["containers"], sidecar.PROXY_CONTAINER, prometheus.ENV, scrape_env)
    if managed is not None:
        new_meta["managedFields"] = managed  # untouched: never part of the patch
    patch = jsonpatch.diff(original, new)
    log.info(
        "injected sidecar %s",
        rlog.kv(
            pod=f"{namespace}/{name}",
            cluster=envs.get("ISTIO_META_CLUSTER_ID", ""),
            network=envs.get("ISTIO_META_NETWORK", ""),
            path=path,
        ),
    )
    return Result(patch, decision.reason, new)
