"""The service registry of one cluster: informers for Services, EndpointSlices, Pods, Nodes and the
system Namespace, turned into mesh Services and Endpoints per hostname.

Every change is reported as the set of hostnames whose services or endpoints changed, so the
aggregate can push EDS only for endpoint changes and full config for service changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightkube
from lightkube.resources import core_v1, discovery_v1

from meshplane.kube import informer as inf
from meshplane.model import endpoint as ep
from meshplane.model import ids
from meshplane.model import service as svc_model
from meshplane.registry import convert
from meshplane.registry import metrics as metrics_mod
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import tasks
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Change:
    """Hostnames whose services / endpoints changed in one cluster."""

    services: set[ids.Hostname] = field(default_factory=set)
    endpoints: set[ids.Hostname] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.services or self.endpoints)


OnChange = Callable[["ClusterRegistry", Change], None]


class ClusterRegistry:
    def __init__(
        self,
        cluster_id: ids.ClusterId,
        client: lightkube.AsyncClient,
        *,
        on_change: OnChange,
        network: str = "",
        system_namespace: str = "istio-system",
        domain: str = ids.DEFAULT_DOMAIN,
        resync_period: float = 300.0,
        clock: clock_mod.Clock | None = None,
        metrics: metrics_mod.RegistryMetrics | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        self._metrics = metrics
        self.client = client
        self._on_change = on_change
        self._configured_network = network
        self._system_namespace = system_namespace
        self._domain = domain
        self._ns_network = ""
        self.services: dict[ids.Hostname, svc_model.Service] = {}
        self.endpoints: dict[ids.Hostname, tuple[ep.Endpoint, ...]] = {}
        # hostname -> slice key -> slice; pod key / node name -> hostnames (to recompute on pod/node changes)
        self._slices: dict[ids.Hostname, dict[inf.Key, Any]] = {}
        self._pod_hosts: dict[inf.Key, set[ids.Hostname]] = {}
        self._node_hosts: dict[str, set[ids.Hostname]] = {}
        # the informer event being handled while `on_change` runs (the composition root reads its
        # object's managedFields time for meshplane_config_propagation_from_write_seconds)
        self.event: inf.Event[Any] | None = None
        self.last_event_at = 0.0  # wall time of the last informer event (the console's clusters view)
        self._clock = clock or clock_mod.SystemClock()
        common: dict[str, Any] = {"cluster_id": cluster_id, "resync_period": resync_period, "clock": clock}
        self.service_informer = inf.Informer(client, core_v1.Service, **common)
        self.slice_informer = inf.Informer(client, discovery_v1.EndpointSlice, **common)
        self.pod_informer = inf.Informer(client, core_v1.Pod, **common)
        self.node_informer = inf.Informer(client, core_v1.Node, **common)
        self.namespace_informer = inf.Informer(client, core_v1.Namespace, **common)
        self.informers: list[inf.Informer[Any]] = [
            self.namespace_informer,
            self.node_informer,
            self.pod_informer,
            self.service_informer,
            self.slice_informer,
        ]
        for informer, handler in (
            (self.service_informer, self._service_event),
            (self.slice_informer, self._slice_event),
            (self.pod_informer, self._pod_event),
            (self.node_informer, self._node_event),
            (self.namespace_informer, self._namespace_event),
        ):
            informer.add_handler(self._counted(informer.kind, handler))
        self._group = tasks.TaskGroup(f"registry/{cluster_id}")

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        for informer in self.informers:
            self._group.start(informer.run(), informer.kind)

    async def stop(self) -> None:
        await self._group.stop()

    @property
    def synced(self) -> bool:
        return all(i.synced for i in self.informers)

    @property
    def connected(self) -> bool:
        return all(i.connected for i in self.informers)

    async def wait_synced(self) -> None:
        for informer in self.informers:
            await informer.wait_synced()

    @property
    def network(self) -> str:
        return self._ns_network or self._configured_network

    # --- event handlers --------------------------------------------------------------------------

    def _counted(self, kind: str, handler: inf.Handler) -> inf.Handler:
        """pilot_k8s_reg_events{cluster,type,event}, then the handler (with `self.event` set)."""
        counter = self._metrics.k8s_reg_events if self._metrics is not None else None
        names = {
            inf.EventType.ADDED: "add",
            inf.EventType.MODIFIED: "update",
            inf.EventType.DELETED: "delete",
        }

        def counted(event: inf.Event[Any]) -> None:
            if counter is not None:
                counter.labels(self.cluster_id, kind, names[event.type]).inc()
            self.event = event
            self.last_event_at = self._clock.wall()
            try:
                handler(event)
            finally:
                self.event = None

        return counted

    def _emit(self, change: Change) -> None:
        if change:
            self._on_change(self, change)

    def _service_event(self, event: inf.Event[Any]) -> None:
        obj = event.obj
        host = ids.service_hostname(obj.metadata.name, obj.metadata.namespace, self._domain)
        if event.type == inf.EventType.DELETED:
            if self.services.pop(host, None) is not None:
                self._emit(Change(services={host}))
            return
        model = convert.service(obj, self.cluster_id, self._domain)
        if self.services.get(host) != model:
            self.services[host] = model
            self._emit(Change(services={host}))

    def _slice_event(self, event: inf.Event[Any]) -> None:
        obj = event.obj
        name = convert.slice_service_name(obj)
        old_name = convert.slice_service_name(event.old) if event.old is not None else None
        key = inf.key_of(obj)
        hosts: set[ids.Hostname] = set()
        if old_name and old_name != name:
            host = ids.service_hostname(old_name, obj.metadata.namespace, self._domain)
            self._slices.get(host, {}).pop(key, None)
            hosts.add(host)
        if name:
            host = ids.service_hostname(name, obj.metadata.namespace, self._domain)
            slices = self._slices.setdefault(host, {})
            if event.type == inf.EventType.DELETED:
                slices.pop(key, None)
            else:
                slices[key] = obj
            hosts.add(host)
        self._emit(Change(endpoints=self._recompute(hosts)))

    def _pod_event(self, event: inf.Event[Any]) -> None:
        old, new = event.old, event.obj
        if event.type == inf.EventType.MODIFIED and old is not None and not _pod_relevant_change(old, new):
            return
        key = inf.key_of(new)
        # a deleted pod's index entry is dropped; the recompute re-adds it if a slice still names it
        hosts = (
            self._pod_hosts.pop(key, set())
            if event.type == inf.EventType.DELETED
            else self._pod_hosts.get(key, set())
        )
        if hosts:
            self._emit(Change(endpoints=self._recompute(set(hosts))))

    def _node_event(self, event: inf.Event[Any]) -> None:
        hosts = self._node_hosts.get(event.obj.metadata.name, set())
        if hosts:
            self._emit(Change(endpoints=self._recompute(set(hosts))))

    def _namespace_event(self, event: inf.Event[Any]) -> None:
        obj = event.obj
        if obj.metadata.name != self._system_namespace:
            return
        labels = obj.metadata.labels or {}
        network = "" if event.type == inf.EventType.DELETED else labels.get(convert.LABEL_NETWORK, "")
        if network != self._ns_network:
            self._ns_network = network
            log.info("cluster network changed %s", kv(cluster=self.cluster_id, network=self.network))
            self._emit(Change(endpoints=self._recompute(set(self._slices))))

    # --- endpoints -------------------------------------------------------------------------------

    def _pod(self, namespace: str, name: str) -> Any | None:
        pod = self.pod_informer.get(name, namespace)
        if pod is not None and pod.status is not None and pod.status.phase == "Failed":
            return None
        return pod

    def _recompute(self, hosts: set[ids.Hostname]) -> set[ids.Hostname]:
        """Rebuild endpoints of `hosts`; return those whose endpoints actually changed."""
        changed: set[ids.Hostname] = set()
        for host in hosts:
            slices = self._slices.get(host, {})
            built: list[ep.Endpoint] = []
            for key in sorted(slices):
                obj = slices[key]
                self._index(host, obj)
                built.extend(
                    convert.endpoints_from_slice(
                        obj,
                        self.cluster_id,
                        default_network=self.network,
                        pods=self._pod,
                        nodes=lambda n: self.node_informer.get(n),
                    )
                )
            endpoints = tuple(built)
            if not slices:
                self._slices.pop(host, None)
            if self.endpoints.get(host, ()) != endpoints:
                if endpoints:
                    self.endpoints[host] = endpoints
                else:
                    self.endpoints.pop(host, None)
                changed.add(host)
        return changed

    def _index(self, host: ids.Hostname, obj: Any) -> None:
        namespace = obj.metadata.namespace
        for item in obj.endpoints or []:
            ref = item.targetRef
            if ref is not None and ref.kind == "Pod":
                self._pod_hosts.setdefault((ref.namespace or namespace, ref.name), set()).add(host)
            if item.nodeName:
                self._node_hosts.setdefault(item.nodeName, set()).add(host)


def _pod_relevant_change(old: Any, new: Any) -> bool:
    """Only what endpoints read from a pod: labels, service account, node, phase."""

    def view(p: Any) -> tuple[Any, ...]:
        spec, status = p.spec, p.status
        return (
            dict(p.metadata.labels or {}),
            spec.serviceAccountName if spec else None,
            spec.nodeName if spec else None,
            status.phase if status else None,
        )

    return view(old) != view(new)
