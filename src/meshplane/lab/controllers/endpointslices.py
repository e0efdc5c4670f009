"""The EndpointSlice controller of a lab cluster.

For every Service with a selector, the Pods it selects become endpoints in EndpointSlices labelled
`kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, owned by the Service:
addresses (the pod IP), conditions (`serving` = the Pod is Ready, `terminating` = it has a
deletionTimestamp, `ready` = serving and not terminating, or always with
publishNotReadyAddresses), targetRef, nodeName and zone. A Service port's targetPort is resolved
per Pod (a number, or a container port's name), so Pods with different port numbers land in
different slices, as in Kubernetes. Selectorless Services and slices this controller does not own
(the `kubernetes` Service's, the remote profile's `istiod`) are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lightkube.resources.discovery_v1 import EndpointSlice

from meshplane.kube import errors as kube_errors
from meshplane.lab import kubeapi, watchcache
from meshplane.lab.node import podspec
from meshplane.runtime import jsonobj
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"


def selects(service: Obj, pod: Obj) -> bool:
    sel = jsonobj.as_obj(jsonobj.as_obj(service.get("spec")).get("selector"))
    labels = jsonobj.as_obj(podspec.meta(pod).get("labels"))
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def pod_ready(pod: Obj) -> bool:
    for c in jsonobj.as_obj(pod.get("status")).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _target_port(pod: Obj, port: Obj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in podspec.containers(pod):
        for p in c.get("ports") or []:
            if isinstance(p, dict) and p.get("name") == target and isinstance(p.get("containerPort"), int):
                return int(p["containerPort"])
    return None


def endpoint(pod: Obj, publish_not_ready: bool, zone: str) -> Obj:
    m, spec = podspec.meta(pod), podspec.spec(pod)
    serving = pod_ready(pod)
    terminating = bool(m.get("deletionTimestamp"))
    ep: Obj = {
        "addresses": [jsonobj.as_obj(pod.get("status")).get("podIP")],
        "conditions": {
            "ready": True if publish_not_ready else (serving and not terminating),
            "serving": True if publish_not_ready else serving,
            "terminating": terminating,
        },
        "targetRef": {
            "kind": "Pod",
            "namespace": m.get("namespace"),
            "name": m.get("name"),
            "uid": m.get("uid"),
        },
    }
    if spec.get("nodeName"):
        ep["nodeName"] = spec["nodeName"]
    if zone:
        ep["zone"] = zone
    return ep


def desired(service: Obj, pods: list[Obj], zone: str) -> list[tuple[tuple[Any, ...], Obj]]:
    """(ports key, slice body without metadata) per distinct port mapping, sorted; one slice with no
    endpoints when nothing is selected (Kubernetes' placeholder)."""
    spec = jsonobj.as_obj(service.get("spec"))
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    publish = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[Any, ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in sorted(pods, key=lambda p: str(podspec.meta(p).get("name"))):
        status = jsonobj.as_obj(pod.get("status"))
        if (
            not status.get("podIP")
            or status.get("phase") in ("Succeeded", "Failed")
            or not selects(service, pod)
        ):
            continue
        slice_ports = []
        for p in ports:
            number = _target_port(pod, p)
            if number is None:
                continue
            sp: Obj = {"name": p.get("name", ""), "port": number, "protocol": p.get("protocol", "TCP")}
            if p.get("appProtocol"):
                sp["appProtocol"] = p["appProtocol"]
            slice_ports.append(sp)
        key = tuple((sp["name"], sp["port"], sp["protocol"]) for sp in slice_ports)
        groups.setdefault(key, (slice_ports, []))[1].append(endpoint(pod, publish, zone))
    if not groups:
        return [((), {"addressType": "IPv4", "endpoints": [], "ports": []})]
    return [
        (key, {"addressType": "IPv4", "endpoints": eps, "ports": sps})
        for key, (sps, eps) in sorted(groups.items())
    ]


def ports_key(slice_: Obj) -> tuple[Any, ...]:
    return tuple(
        (
            jsonobj.as_obj(p).get("name", ""),
            jsonobj.as_obj(p).get("port"),
            jsonobj.as_obj(p).get("protocol", "TCP"),
        )
        for p in slice_.get("ports") or []
    )


def owned_by(slice_: Obj, service: Obj | None) -> bool:
    refs = podspec.meta(slice_).get("ownerReferences") or []
    uid = podspec.meta(service).get("uid") if service else None
    return any(
        isinstance(r, dict)
        and r.get("kind") == "Service"
        and r.get("controller")
        and (uid is None or r.get("uid") == uid)
        for r in refs
    )


class EndpointSlices:
    def __init__(
        self,
        api: kubeapi.Api,
        services: watchcache.WatchCache,
        pods: watchcache.WatchCache,
        slices: watchcache.WatchCache,
        zone: str,
        cluster: str,
    ) -> None:
        self.api, self.services, self.pods, self.slices = api, services, pods, slices
        self.zone, self.cluster = zone, cluster
        self.trigger = watchcache.Trigger()
        self._slices_changed = asyncio.Event()  # replaced after each change: waiters hold the old one
        self._unseen: dict[tuple[str, str], Obj] = {}  # slices created but not yet in the cache
        services.add_handler(self.trigger.fire)
        pods.add_handler(self.trigger.fire)
        slices.add_handler(self._on_slice)

    def _on_slice(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self._unseen.pop(watchcache.key_of(new), None)
        self.trigger.fire()
        changed, self._slices_changed = self._slices_changed, asyncio.Event()
        changed.set()

    async def run(self) -> None:
        for c in (self.services, self.pods, self.slices):
            await c.wait_synced()
        await watchcache.reconcile_loop(
            "endpointslice controller", self.cluster, self.trigger, self.sync_all, 10.0
        )

    async def sync_all(self) -> None:
        by_service: dict[tuple[str, str], list[Obj]] = {}
        for key in [k for k in self._unseen if self.slices.get(*k) is not None]:
            del self._unseen[key]
        for s in [*self.slices.items(), *self._unseen.values()]:
            m = podspec.meta(s)
            if jsonobj.as_obj(m.get("labels")).get(MANAGED_BY) == CONTROLLER and owned_by(s, None):
                name = jsonobj.as_obj(m.get("labels")).get(SERVICE_NAME, "")
                by_service.setdefault((str(m.get("namespace")), str(name)), []).append(s)
        for svc in self.services.items():
            m, spec = podspec.meta(svc), jsonobj.as_obj(svc.get("spec"))
            key = (str(m.get("namespace")), str(m.get("name")))
            existing = [s for s in by_service.pop(key, []) if owned_by(s, svc)]
            if not spec.get("selector") or spec.get("type") == "ExternalName" or m.get("deletionTimestamp"):
                await self._delete(existing)
                continue
            await self._sync_service(svc, existing)
        for leftovers in by_service.values():  # their Service is gone
            await self._delete(leftovers)

    async def _delete(self, slices: list[Obj]) -> None:
        for s in slices:
            m = podspec.meta(s)
            self._unseen.pop(watchcache.key_of(s), None)
            await self.api.delete(EndpointSlice, str(m.get("name")), namespace=str(m.get("namespace")))

    async def _sync_service(self, svc: Obj, existing: list[Obj]) -> None:
        m = podspec.meta(svc)
        ns, name = str(m.get("namespace")), str(m.get("name"))
        want = desired(svc, self.pods.items(ns), self.zone)
        labels = {**jsonobj.as_obj(m.get("labels")), SERVICE_NAME: name, MANAGED_BY: CONTROLLER}
        pool = {ports_key(s): s for s in existing}
        for key, body in want:
            current = pool.pop(key, None)
            if current is None:
                obj = {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "generateName": f"{name}-",
                        "namespace": ns,
                        "labels": labels,
                        "ownerReferences": [
                            {
                                "apiVersion": "v1",
                                "kind": "Service",
                                "name": name,
                                "uid": m.get("uid"),
                                "controller": True,
                                "blockOwnerDeletion": True,
                            }
                        ],
                    },
                    **body,
                }
                created = await self.api.create(EndpointSlice, obj, namespace=ns)
                if self.slices.get(*watchcache.key_of(created)) is None:
                    self._unseen[watchcache.key_of(created)] = created
                log.info(
                    "created endpointslice %s",
                    kv(cluster=self.cluster, service=f"{ns}/{name}", slice=podspec.meta(created).get("name")),
                )
                continue
            same = (current.get("endpoints") or []) == body["endpoints"] and jsonobj.as_obj(
                podspec.meta(current).get("labels")
            ) == labels
            if not same:
                try:
                    await self.api.patch(
                        EndpointSlice,
                        str(podspec.meta(current).get("name")),
                        {"metadata": {"labels": labels}, "endpoints": body["endpoints"]},
                        namespace=ns,
                    )
                except Exception as e:
                    if not kube_errors.is_not_found(e):
                        raise
                    self._unseen.pop(watchcache.key_of(current), None)
                    self.trigger.fire()
        await self._delete(list(pool.values()))

    def listed(self, pod: Obj) -> tuple[bool, bool]:
        """(the pod is in some slice, some slice lists it as ready)."""
        uid = podspec.meta(pod).get("uid")
        ns = str(podspec.meta(pod).get("namespace"))
        present = ready = False
        for s in self.slices.items(ns):
            for ep in s.get("endpoints") or []:
                if jsonobj.as_obj(jsonobj.as_obj(ep).get("targetRef")).get("uid") == uid:
                    present = True
                    ready = ready or bool(jsonobj.as_obj(jsonobj.as_obj(ep).get("conditions")).get("ready"))
        return present, ready

    async def not_ready(self, pod: Obj, timeout: float = 3.0) -> bool:  # noqa: ASYNC109 - bounded by design
        """Wait until no slice lists the pod as ready (the kubelet's gate before SIGTERM); True
        when the pod is an endpoint at all."""
        self.trigger.fire()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.listed(pod)[1]:
                    await self._slices_changed.wait()
        return self.listed(pod)[0]
