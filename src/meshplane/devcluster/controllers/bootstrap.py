"""Objects every cluster has from the start: the default namespaces and the `kubernetes` Service
(with its Endpoints and EndpointSlice) pointing at the API server."""

from __future__ import annotations

import ipaddress
import logging

from meshplane.devcluster import errors
from meshplane.devcluster.controllers import objects
from meshplane.devcluster.schema import defaults, resources
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _address(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return "127.0.0.1"


async def ensure(api: objects.ObjectApi, reg: resources.Registry, host: str, port: int) -> None:
    """Create what is missing and point the API server's endpoints at host:port (idempotent)."""
    ns_rt = reg.lookup("", "v1", "namespaces")
    assert ns_rt is not None
    for ns in NAMESPACES:
        if api.store.peek("namespaces", "", ns) is None:
            obj: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            defaults.apply("namespaces", "", obj, None, api.clock.wall())
            await api.create(ns_rt, obj)
    ip = _address(host)
    svc: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "clusterIP": api.service_ips.api_ip,
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
        },
    }
    eps: Obj = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [
            {"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
        ],
    }
    slice_: Obj = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": "kubernetes",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False}}
        ],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
    for group, plural, obj in (
        ("", "services", svc),
        ("", "endpoints", eps),
        ("discovery.k8s.io", "endpointslices", slice_),
    ):
        rt = reg.lookup(group, "v1", plural)
        assert rt is not None
        defaults.apply(plural, group, obj, None, api.clock.wall())
        current = api.store.get(rt.key, "default", "kubernetes")
        try:
            if current is None:
                await api.create(rt, obj)
            elif _differs(current, obj):
                merged = dict(current)
                for k, v in obj.items():
                    if k != "metadata":
                        merged[k] = v
                if plural == "services":
                    merged["spec"] = dict(
                        obj["spec"],
                        clusterIP=current["spec"].get("clusterIP"),
                        clusterIPs=current["spec"].get("clusterIPs"),
                    )
                await api.update(rt, merged)
        except errors.ApiError as e:
            log.warning("bootstrap object failed kind=%s error=%s", rt.kind, e)


def _differs(current: Obj, want: Obj) -> bool:
    if want["kind"] == "Service":
        return bool(current["spec"].get("ports") != want["spec"]["ports"])
    keys = ("subsets",) if want["kind"] == "Endpoints" else ("endpoints", "ports")
    return any(current.get(k) != want.get(k) for k in keys)
