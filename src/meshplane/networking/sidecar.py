"""Istio's Sidecar (networking.istio.io): which services a sidecar proxy sees (egress scoping).

Implemented: `workloadSelector`, one catch-all `egress` listener's `hosts` (`namespace/dnsName`)
and `outboundTrafficPolicy.mode`. Refused by name (not generated): `ingress`,
`inboundConnectionPool`, egress `port`/`bind`/`captureMode`, `outboundTrafficPolicy.egressProxy`.

Rules follow istio/istio pilot/pkg/model/sidecar.go (`ConvertToSidecarScope`, `selectServices`,
`DefaultSidecarScopeForNamespace`) and pkg/config/validation (`ValidateSidecar`,
`validateSidecarEgressPortBindAndCaptureMode`, `validateNamespaceSlashWildcardHostname`); see
https://istio.io/latest/docs/reference/config/networking/sidecar/.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from meshplane.model import crfields as fields
from meshplane.model import mesh
from meshplane.networking import hosts, objects

_EMPTY: Mapping[str, str] = MappingProxyType({})

_SPEC = ("workloadSelector", "egress", "outboundTrafficPolicy")
_SPEC_UNSUPPORTED = ("ingress", "inboundConnectionPool")
_EGRESS = ("hosts",)
_EGRESS_UNSUPPORTED = ("port", "bind", "captureMode")


@dataclass(frozen=True, slots=True)
class EgressHost:
    """One `namespace/dnsName` import; `.` is already replaced by the Sidecar's namespace."""

    namespace: str  # "*" any namespace, "~" none, or a namespace name
    dns: str  # "*", "*.suffix" or a name

    def imports(self, service_host: str, service_namespace: str) -> bool:
        if self.namespace == "~":
            return False
        if self.namespace not in ("*", service_namespace):
            return False
        return hosts.matches(self.dns, service_host)


@dataclass(frozen=True, slots=True)
class Sidecar:
    name: str
    namespace: str
    selector: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    # None: the egress listener is absent and every service is imported (Istio's default)
    egress_hosts: tuple[EgressHost, ...] | None = None
    outbound_traffic_policy: mesh.OutboundTrafficPolicy | None = None  # None: the mesh's
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, labels: Mapping[str, str]) -> bool:
        return bool(self.selector) and all(labels.get(k) == v for k, v in self.selector.items())

    def imports(self, service_host: str, service_namespace: str) -> bool:
        """sidecar.go selectServices: an import of the service's own namespace, or of `*/`."""
        if self.egress_hosts is None:
            return True
        return any(h.imports(service_host, service_namespace) for h in self.egress_hosts)


def parse(obj: Mapping[str, Any], default_namespace: str = "default") -> Sidecar:
    meta, spec = objects.meta(obj, "Sidecar", default_namespace)
    r = fields.Reader(meta.ref)
    r.only(spec, "spec", _SPEC, _SPEC_UNSUPPORTED)
    selector: dict[str, str] = {}
    if spec.get("workloadSelector") is not None:
        ws = r.obj(spec, "workloadSelector", "spec")
        r.only(ws, "spec.workloadSelector", ("labels",))
        selector = r.labels(ws, "labels", "spec.workloadSelector")
    egress_raw = r.items(spec, "egress", "spec")
    if len(egress_raw) > 1:
        # every listener here is a catch-all (port is refused); Istio allows only one
        raise r.fail("spec.egress", "only one egress listener without a port is allowed")
    egress: tuple[EgressHost, ...] | None = None
    for i, raw in enumerate(egress_raw):
        path = f"spec.egress[{i}]"
        if not isinstance(raw, Mapping):
            raise r.fail(path, "must be an object")
        r.only(raw, path, _EGRESS, _EGRESS_UNSUPPORTED)
        texts = r.texts(raw, "hosts", path, required=True)
        if not texts:
            raise r.fail(f"{path}.hosts", "egress listener must contain at least one host")
        egress = tuple(_egress_host(r, t, f"{path}.hosts[{j}]", meta.namespace) for j, t in enumerate(texts))
    policy = None
    if spec.get("outboundTrafficPolicy") is not None:
        otp = r.obj(spec, "outboundTrafficPolicy", "spec")
        r.only(otp, "spec.outboundTrafficPolicy", ("mode",), ("egressProxy",))
        mode = r.text(otp, "mode", "spec.outboundTrafficPolicy") or "REGISTRY_ONLY"
        try:
            policy = mesh.OutboundTrafficPolicy(mode)
        except ValueError:
            want = ", ".join(p.value for p in mesh.OutboundTrafficPolicy)
            raise r.fail(
                "spec.outboundTrafficPolicy.mode", f"unknown mode {mode!r:.40}; want {want}"
            ) from None
    if not spec:
        raise r.fail("spec", "empty configuration provided")
    return Sidecar(meta.name, meta.namespace, MappingProxyType(selector), egress, policy, meta.created)


def _egress_host(r: fields.Reader, text: str, path: str, own_namespace: str) -> EgressHost:
    """validateNamespaceSlashWildcardHostname: `namespace/dnsName`, namespace `*`, `.`, `~` or a name."""
    if "/" not in text:
        raise r.fail(path, f"{text!r:.80} must be of the form namespace/dnsName")
    problem = hosts.check_gateway_host(text)
    if problem:
        raise r.fail(path, problem)
    ns, _, dns = text.partition("/")
    if not ns:
        raise r.fail(path, f"namespace part of {text!r:.80} must not be empty")
    return EgressHost(own_namespace if ns == "." else ns, dns)


def select(
    sidecars: Iterable[Sidecar], proxy_namespace: str, labels: Mapping[str, str], root_namespace: str
) -> Sidecar | None:
    """The Sidecar of a proxy (push_context.go getSidecarScope): in the proxy's namespace the oldest
    one whose workloadSelector matches its labels, else that namespace's oldest selector-less one,
    else the root namespace's oldest selector-less one (the mesh default), else None (all visible).
    `sidecars` are in config order (creation time, then namespace/name)."""
    default = mesh_default = None
    for s in sidecars:
        if s.namespace == proxy_namespace:
            if s.selector:
                if s.selects(labels):
                    return s
            elif default is None:
                default = s
        if s.namespace == root_namespace and not s.selector and mesh_default is None:
            mesh_default = s
    return default or mesh_default
