"""Istio's MeshConfig (ConfigMap `istio`, key `mesh`) and mesh-wide PeerAuthentication → model.MeshConfig.

Only the fields meshplane acts on are read; the rest of a real Istio mesh config is accepted and
ignored, because users copy whole files. A malformed document is an error naming the field, and
the caller keeps the last good config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import yaml

from meshplane.model import mesh
from meshplane.registry import errors


def parse(text: str | None, base: mesh.MeshConfig) -> mesh.MeshConfig:
    """Apply the `mesh` YAML on top of `base` (the flags' defaults)."""
    if not text or not text.strip():
        return base
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise errors.MeshConfigError(f"mesh: not valid YAML: {e}") from e
    if doc is None:
        return base
    if not isinstance(doc, Mapping):
        raise errors.MeshConfigError("mesh: expected a mapping")
    out = base
    trust_domain = _str(doc, "trustDomain")
    if trust_domain:
        out = replace(out, trust_domain=trust_domain)
    root_ns = _str(doc, "rootNamespace")
    if root_ns:
        out = replace(out, root_namespace=root_ns)
    default_config = doc.get("defaultConfig")
    default_config = {} if default_config is None else default_config
    if not isinstance(default_config, Mapping):
        raise errors.MeshConfigError("mesh.defaultConfig: expected a mapping")
    mesh_id = _str(default_config, "meshId", "mesh.defaultConfig")
    if mesh_id:
        out = replace(out, mesh_id=mesh_id)
    policy = doc.get("outboundTrafficPolicy")
    policy = {} if policy is None else policy
    if not isinstance(policy, Mapping):
        raise errors.MeshConfigError("mesh.outboundTrafficPolicy: expected a mapping")
    mode = _str(policy, "mode", "mesh.outboundTrafficPolicy")
    if mode:
        try:
            out = replace(out, outbound_traffic_policy=mesh.OutboundTrafficPolicy(mode))
        except ValueError:
            raise errors.MeshConfigError(
                f"mesh.outboundTrafficPolicy.mode: {mode[:40]!r} is not ALLOW_ANY or REGISTRY_ONLY"
            ) from None
    local: list[str] = list(mesh.DEFAULT_CLUSTER_LOCAL_HOSTS)
    not_local: list[str] = []
    settings = doc.get("serviceSettings")
    settings = [] if settings is None else settings
    if not isinstance(settings, list):
        raise errors.MeshConfigError("mesh.serviceSettings: expected a list")
    for i, entry in enumerate(settings):
        path = f"mesh.serviceSettings[{i}]"
        if not isinstance(entry, Mapping):
            raise errors.MeshConfigError(f"{path}: expected a mapping")
        hosts = entry.get("hosts") or []
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise errors.MeshConfigError(f"{path}.hosts: expected a list of strings")
        flags = entry.get("settings") or {}
        if not isinstance(flags, Mapping):
            raise errors.MeshConfigError(f"{path}.settings: expected a mapping")
        cluster_local = flags.get("clusterLocal", False)
        if not isinstance(cluster_local, bool):
            raise errors.MeshConfigError(f"{path}.settings.clusterLocal: expected true or false")
        (local if cluster_local else not_local).extend(hosts)
    return replace(out, cluster_local_hosts=tuple(local), not_cluster_local_hosts=tuple(not_local))


def _str(doc: Mapping[str, Any], key: str, path: str = "mesh") -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.MeshConfigError(f"{path}.{key}: expected a string")
    return value


def mtls_mode(peer_authentications: list[Mapping[str, Any]], root_namespace: str) -> mesh.MtlsMode:
    """The mesh-wide mode: the oldest selector-less PeerAuthentication in the root namespace whose
    mode is set (Istio's ComposePeerAuthentication mesh level); PERMISSIVE without one. Workload and
    namespace levels are composed per workload from the policy config (policy/peerauthn.py)."""
    found: tuple[str, str, mesh.MtlsMode] | None = None
    for pa in peer_authentications:
        meta = pa.get("metadata") or {}
        spec = pa.get("spec") or {}
        if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
            continue
        selector = spec.get("selector") or {}
        if meta.get("namespace") != root_namespace or (
            isinstance(selector, Mapping) and selector.get("matchLabels")
        ):
            continue
        mtls = spec.get("mtls") or {}
        text = str(mtls.get("mode") or "").upper() if isinstance(mtls, Mapping) else ""
        if text not in ("STRICT", "PERMISSIVE", "DISABLE"):
            continue
        key = (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""), mesh.MtlsMode(text))
        if found is None or key[:2] < found[:2]:
            found = key
    return found[2] if found is not None else mesh.MtlsMode.PERMISSIVE
