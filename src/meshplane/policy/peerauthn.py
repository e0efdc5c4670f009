"""Istio's PeerAuthentication (security.istio.io): which mTLS mode a workload's sidecar accepts.

Parsed: `selector`, `mtls.mode` and `portLevelMtls` (modes UNSET, DISABLE, PERMISSIVE, STRICT),
validated as pilot/pkg/config/validation (ValidatePeerAuthentication): `portLevelMtls` needs a
selector, its keys are ports 1-65535. Unknown fields are refused with their path.

`compose` is Istio's ComposePeerAuthentication (pilot/pkg/security/authn/policy_applier.go): of the
policies for a workload, the oldest selector-less one in the root namespace is the mesh level, the
oldest selector-less one in the workload's namespace the namespace level, the oldest selecting one
in the workload's namespace (never in the root namespace) the workload level. They apply in that
order; UNSET inherits from the level above; an UNSET port-level mode inherits the workload's mode.
Without any policy the mode is PERMISSIVE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.model import crfields
from meshplane.model.mesh import MtlsMode
from meshplane.policy import objects, selector

KIND = "PeerAuthentication"
_MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    name: str
    namespace: str
    selector: Mapping[str, str]
    mode: MtlsMode | None  # None: UNSET (inherit)
    port_modes: tuple[tuple[int, MtlsMode | None], ...] = ()
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __hash__(self) -> int:
        return hash((self.namespace, self.name, self.mode, self.port_modes, self.created))


@dataclass(frozen=True, slots=True)
class Effective:
    """A workload's composed mode, and its port-level exceptions (target ports)."""

    mode: MtlsMode = MtlsMode.PERMISSIVE
    ports: tuple[tuple[int, MtlsMode], ...] = ()

    def for_port(self, port: int) -> MtlsMode:
        for p, m in self.ports:
            if p == port:
                return m
        return self.mode


def _mode(r: crfields.Reader, parent: Mapping[str, Any], path: str) -> MtlsMode | None:
    unknown = sorted(set(parent) - {"mode"})
    if unknown:
        raise r.fail(f"{path}.{unknown[0]}", "unknown field (mTLS settings have mode only)")
    text = r.text(parent, "mode", path) or "UNSET"
    if text not in _MODES:
        raise r.fail(f"{path}.mode", f"unknown mode {text!r:.40}; want one of {', '.join(_MODES)}")
    return None if text == "UNSET" else MtlsMode(text)


def parse(obj: Mapping[str, Any], default_namespace: str = "default") -> PeerAuthentication:
    meta, spec = objects.meta(obj, KIND, default_namespace)
    r = crfields.Reader(meta.ref)
    unknown = sorted(set(spec) - {"selector", "mtls", "portLevelMtls"})
    if unknown:
        raise r.fail(f"spec.{unknown[0]}", "unknown field")
    sel = selector.parse(r, spec)
    mode = _mode(r, r.obj(spec, "mtls", "spec"), "spec.mtls")
    ports: list[tuple[int, MtlsMode | None]] = []
    raw_ports = r.obj(spec, "portLevelMtls", "spec")
    if raw_ports and not sel:
        raise r.fail("spec.portLevelMtls", "mesh/namespace peer authentication cannot have port level mTLS")
    for key in raw_ports:
        ppath = f"spec.portLevelMtls.{key}"
        text = str(key)
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise r.fail(ppath, f"port must be an integer in 1-65535, got {text!r:.20}")
        ports.append((int(text), _mode(r, r.obj(raw_ports, key, "spec.portLevelMtls"), ppath)))
    return PeerAuthentication(meta.name, meta.namespace, sel, mode, tuple(sorted(ports)), meta.created)


def _older(a: PeerAuthentication | None, b: PeerAuthentication) -> bool:
    """b wins over a: no a yet, or b was created first (then namespace/name, as Istio sorts)."""
    return a is None or (b.created, b.namespace, b.name) < (a.created, a.namespace, a.name)


def compose(
    policies: Iterable[PeerAuthentication],
    root_namespace: str,
    namespace: str,
    labels: Mapping[str, str],
    default: MtlsMode = MtlsMode.PERMISSIVE,
) -> Effective:
    mesh_pa = ns_pa = wl_pa = None
    for pa in policies:
        if pa.namespace not in (namespace, root_namespace):
            continue
        if not pa.selector:
            if pa.namespace == root_namespace:
                if _older(mesh_pa, pa):
                    mesh_pa = pa
            elif _older(ns_pa, pa):
                ns_pa = pa
        elif pa.namespace != root_namespace and selector.selects(pa.selector, labels) and _older(wl_pa, pa):
            wl_pa = pa
    mode = default
    for level in (mesh_pa, ns_pa, wl_pa):
        if level is not None and level.mode is not None:
            mode = level.mode
    if wl_pa is None or not wl_pa.port_modes:
        return Effective(mode)
    return Effective(mode, tuple((p, m if m is not None else mode) for p, m in wl_pa.port_modes))
