"""Istio's ServiceEntry (networking.istio.io): services outside the Kubernetes registry.

Implemented: `hosts`, `ports` (number, protocol, name, targetPort), `location` (MESH_EXTERNAL,
MESH_INTERNAL), `resolution` NONE / STATIC / DNS, `endpoints` (address, ports, labels, network,
locality) and `exportTo: ["*"]`. Refused by name (not generated): `addresses` (VIP listeners),
`workloadSelector`, `subjectAltNames`, resolution DNS_ROUND_ROBIN, endpoint `weight` and
`serviceAccount`, `exportTo` other than "*".

Validation follows istio/istio pkg/config/validation (`ValidateServiceEntry`), conversion to
services and endpoints pilot/pkg/serviceregistry/serviceentry/conversion.go (`convertServices`,
`convertEndpoint`); see https://istio.io/latest/docs/reference/config/networking/service-entry/.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from meshplane.model import crfields as fields
from meshplane.model import endpoint, service
from meshplane.model.ids import ClusterId, Hostname
from meshplane.networking import hosts, objects

_EMPTY: Mapping[str, str] = MappingProxyType({})
# the shard key of ServiceEntry endpoints (Istio's provider.External registry)
EXTERNAL_CLUSTER = ClusterId("External")
# hostname -> shard -> endpoints, as push/context.py EndpointShards
Shards = Mapping[Hostname, Mapping[ClusterId, tuple[endpoint.Endpoint, ...]]]

_SPEC = ("hosts", "ports", "location", "resolution", "endpoints", "exportTo")
_SPEC_UNSUPPORTED = ("addresses", "workloadSelector", "subjectAltNames")
_PORT = ("number", "protocol", "name", "targetPort")
_ENDPOINT = ("address", "ports", "labels", "network", "locality")
_ENDPOINT_UNSUPPORTED = ("weight", "serviceAccount")
_PROTOCOLS = {p.value for p in service.Protocol if p is not service.Protocol.UNSUPPORTED} | {"GRPC-WEB"}
_LOCATIONS = ("MESH_EXTERNAL", "MESH_INTERNAL")
_RESOLUTIONS = {
    "NONE": service.Resolution.PASSTHROUGH,
    "STATIC": service.Resolution.CLIENT_SIDE_LB,
    "DNS": service.Resolution.DNS_LB,
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    ports: Mapping[str, int] = field(default_factory=dict)  # port name -> endpoint port
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    network: str = ""
    locality: endpoint.Locality = field(default_factory=endpoint.Locality)


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    name: str
    namespace: str
    hosts: tuple[str, ...]
    ports: tuple[tuple[service.ServicePort, int], ...]  # (port, targetPort or 0)
    resolution: service.Resolution
    mesh_external: bool = True
    endpoints: tuple[Endpoint, ...] = ()
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse(obj: Mapping[str, Any], default_namespace: str = "default") -> ServiceEntry:
    meta, spec = objects.meta(obj, "ServiceEntry", default_namespace)
    r = fields.Reader(meta.ref)
    r.only(spec, "spec", _SPEC, _SPEC_UNSUPPORTED)
    names = r.texts(spec, "hosts", "spec", required=True)
    for i, h in enumerate(names):
        problem = "host must not be '*'" if h == "*" else hosts.check_host(h)
        if problem:
            raise r.fail(f"spec.hosts[{i}]", problem)
    location = r.text(spec, "location", "spec") or "MESH_EXTERNAL"
    if location not in _LOCATIONS:
        raise r.fail("spec.location", f"unknown location {location!r:.40}; want {', '.join(_LOCATIONS)}")
    res_text = r.text(spec, "resolution", "spec") or "NONE"
    if res_text == "DNS_ROUND_ROBIN":
        raise r.fail("spec.resolution", "DNS_ROUND_ROBIN is not supported by meshplane")
    if res_text not in _RESOLUTIONS:
        raise r.fail(
            "spec.resolution", f"unknown resolution {res_text!r:.40}; want {', '.join(_RESOLUTIONS)}"
        )
    resolution = _RESOLUTIONS[res_text]
    for t in r.texts(spec, "exportTo", "spec"):
        if t != "*":
            raise r.fail("spec.exportTo", f"{t!r:.40} is not supported by meshplane (only '*')")
    ports = _ports(r, spec)
    port_names = {p.name for p, _ in ports}
    eps = tuple(
        _endpoint(r, raw, f"spec.endpoints[{i}]", port_names, res_text)
        for i, raw in enumerate(r.items(spec, "endpoints", "spec"))
    )
    if res_text == "NONE" and eps:
        raise r.fail("spec.endpoints", "no endpoints should be provided for resolution type NONE")
    if res_text == "STATIC" and not eps:
        raise r.fail("spec.endpoints", "endpoints must be provided for resolution type STATIC")
    if res_text == "DNS" and not eps:
        for i, h in enumerate(names):
            if h.startswith("*"):
                raise r.fail(f"spec.hosts[{i}]", "a wildcard host needs endpoints with resolution DNS")
    return ServiceEntry(
        meta.name, meta.namespace, names, ports, resolution, location == "MESH_EXTERNAL", eps, meta.created
    )


def _ports(r: fields.Reader, spec: Mapping[str, Any]) -> tuple[tuple[service.ServicePort, int], ...]:
    out: list[tuple[service.ServicePort, int]] = []
    numbers: set[int] = set()
    names: set[str] = set()
    for i, raw in enumerate(r.items(spec, "ports", "spec", required=True)):
        path = f"spec.ports[{i}]"
        if not isinstance(raw, Mapping):
            raise r.fail(path, "must be an object")
        r.only(raw, path, _PORT)
        number = r.port(raw, "number", path, required=True)
        name = r.text(raw, "name", path, required=True)
        proto = r.text(raw, "protocol", path, required=True).upper()
        if proto not in _PROTOCOLS:
            raise r.fail(f"{path}.protocol", f"unknown protocol {proto!r:.40}")
        target = r.port(raw, "targetPort", path)
        if number in numbers:
            raise r.fail(f"{path}.number", f"port number {number} is not unique")
        if name in names:
            raise r.fail(f"{path}.name", f"port name {name!r:.40} is not unique")
        numbers.add(number)
        names.add(name)
        protocol = service.Protocol.HTTP if proto == "GRPC-WEB" else service.Protocol(proto)
        out.append((service.ServicePort(name, number, protocol), target))
    return tuple(out)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _endpoint(r: fields.Reader, raw: Any, path: str, port_names: set[str], resolution: str) -> Endpoint:
    if not isinstance(raw, Mapping):
        raise r.fail(path, "must be an object")
    r.only(raw, path, _ENDPOINT, _ENDPOINT_UNSUPPORTED)
    address = r.text(raw, "address", path, required=True)
    if resolution == "STATIC" and not _is_ip(address):
        raise r.fail(f"{path}.address", f"{address!r:.80} must be an IP address for resolution STATIC")
    if resolution == "DNS" and not _is_ip(address) and (address.startswith("*") or hosts.check_host(address)):
        raise r.fail(f"{path}.address", f"{address!r:.80} must be a DNS name or an IP address")
    ports: dict[str, int] = {}
    for name in r.obj(raw, "ports", path):
        if name not in port_names:
            raise r.fail(f"{path}.ports.{name}", "is not the name of a port of the ServiceEntry")
        ports[name] = r.port(raw["ports"], name, f"{path}.ports")
    loc = r.text(raw, "locality", path)
    parts = loc.split("/") if loc else []
    if len(parts) > 3 or any(not p for p in parts):
        raise r.fail(f"{path}.locality", f"{loc!r:.80} must be region[/zone[/subzone]]")
    return Endpoint(
        address,
        MappingProxyType(ports),
        MappingProxyType(r.labels(raw, "labels", path)),
        r.text(raw, "network", path),
        endpoint.Locality(*parts),
    )


def services(
    entries: Iterable[ServiceEntry],
) -> tuple[Mapping[Hostname, service.Service], Shards]:
    """convertServices/convertEndpoint: one service per host (the first entry of a host wins, in
    config order), its endpoints in the EXTERNAL_CLUSTER shard. Without endpoints a DNS entry
    resolves its own host names. MESH_EXTERNAL endpoints get no `tlsMode: istio` (no mTLS)."""
    svcs: dict[Hostname, service.Service] = {}
    shards: dict[Hostname, Mapping[ClusterId, tuple[endpoint.Endpoint, ...]]] = {}
    for se in entries:
        for h in se.hosts:
            host = Hostname(h)
            if host in svcs:
                continue
            svcs[host] = service.Service(
                host,
                h,
                se.namespace,
                tuple(p for p, _ in se.ports),
                resolution=se.resolution,
                registry=service.Registry.EXTERNAL,
                mesh_external=se.mesh_external,
            )
            raw = se.endpoints
            if not raw and se.resolution is service.Resolution.DNS_LB:
                raw = (Endpoint(h),)
            shards[host] = MappingProxyType(
                {
                    EXTERNAL_CLUSTER: tuple(
                        endpoint.Endpoint(
                            ep.address,
                            _targets(se, ep),
                            EXTERNAL_CLUSTER,
                            network=ep.network,
                            locality=ep.locality,
                            labels=ep.labels,
                            namespace=se.namespace,
                            workload_name=se.name,
                            tls_mode="" if se.mesh_external else "istio",
                        )
                        for ep in raw
                    )
                }
            )
    return svcs, shards


def _targets(se: ServiceEntry, ep: Endpoint) -> Mapping[str, int]:
    """An endpoint's port per service port: its `ports` entry, else targetPort, else the number."""
    return MappingProxyType({p.name: ep.ports.get(p.name) or t or p.port for p, t in se.ports})
