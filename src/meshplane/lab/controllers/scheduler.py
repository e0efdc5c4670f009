"""The scheduler of a lab cluster, and its one Node.

Each lab cluster has exactly one node, the node runtime itself. At start it registers the Node
object (labels with its region and zone, which Istio reads as the workloads' locality; its
InternalIP is the first address of the cluster's pod range), and from then on binds every
unscheduled Pod to it by setting `spec.nodeName` (the dev cluster serves no `pods/binding`). A Pod
whose nodeSelector the node does not satisfy stays Pending with PodScheduled=False, as on a real
cluster with no fitting node.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass, field

from lightkube.resources.core_v1 import Node, Pod

from meshplane.kube import errors as kube_errors
from meshplane.lab import kubeapi, watchcache
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

REGION = "topology.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
KUBELET_VERSION = "v1.32.0-meshplane-lab"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    ip: str
    pod_cidr: str
    region: str
    zone: str
    extra_labels: dict[str, str] = field(default_factory=dict)
    kubelet_port: int = 0  # the node's kubelet API (node/kubeletapi.py), 0 = none

    @property
    def labels(self) -> dict[str, str]:
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        return {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
            REGION: self.region,
            ZONE: self.zone,
            **self.extra_labels,
        }


def node_object(info: NodeInfo) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": info.name, "labels": info.labels},
        "spec": {"podCIDR": info.pod_cidr, "podCIDRs": [info.pod_cidr]},
    }


def node_status(info: NodeInfo, now: str) -> Obj:
    cpus = str(os.cpu_count() or 1)
    status: Obj = {
        "addresses": [{"type": "InternalIP", "address": info.ip}, {"type": "Hostname", "address": info.name}],
        "capacity": {"cpu": cpus, "memory": "16Gi", "pods": "250"},
        "allocatable": {"cpu": cpus, "memory": "16Gi", "pods": "250"},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status (meshplane lab node runtime)",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        ],
        "nodeInfo": {
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": platform.machine(),
            "containerRuntimeVersion": "meshplane-lab://processes",
            "osImage": platform.platform(),
            "kernelVersion": platform.release(),
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }
    if info.kubelet_port:  # where kube-apiserver reaches the kubelet (pod logs, exec, attach)
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": info.kubelet_port}}
    return status


def fits(pod: Obj, labels: dict[str, str]) -> bool:
    """nodeSelector only (the lab's node has no taints; affinity is not evaluated)."""
    sel = (pod.get("spec") or {}).get("nodeSelector") or {}
    return isinstance(sel, dict) and all(labels.get(str(k)) == str(v) for k, v in sel.items())


class Scheduler:
    def __init__(
        self,
        api: kubeapi.Api,
        pods: watchcache.WatchCache,
        info: NodeInfo,
        cluster: str,
        clock: clock_mod.Clock,
    ) -> None:
        self.api, self.pods, self.info, self.cluster, self.clock = api, pods, info, cluster, clock
        self.trigger = watchcache.Trigger()
        self._unschedulable: set[str] = set()
        pods.add_handler(self._on_pod)

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None and not (new.get("spec") or {}).get("nodeName"):
            self.trigger.fire()

    async def register(self) -> None:
        """Create or update this node's Node object and mark it Ready."""
        try:
            await self.api.create(Node, node_object(self.info))
        except Exception as e:
            if kube_errors.status_code(e) not in (409, 422):
                raise
            await self.api.patch(Node, self.info.name, {"metadata": {"labels": self.info.labels}})
        now = rfc3339.format(self.clock.wall())
        await self.api.patch(Node.Status, self.info.name, {"status": node_status(self.info, now)})
        log.info("node registered %s", kv(cluster=self.cluster, node=self.info.name, ip=self.info.ip))

    async def run(self) -> None:
        await self.pods.wait_synced()
        await watchcache.reconcile_loop("scheduler", self.cluster, self.trigger, self.schedule, 10.0)

    async def schedule(self) -> None:
        labels = self.info.labels
        for pod in self.pods.items():
            m, spec = pod.get("metadata") or {}, pod.get("spec") or {}
            if spec.get("nodeName") or m.get("deletionTimestamp"):
                continue
            if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            ns, name, uid = str(m.get("namespace")), str(m.get("name")), str(m.get("uid"))
            if not fits(pod, labels):
                if uid not in self._unschedulable:
                    self._unschedulable.add(uid)
                    await self._unschedulable_status(ns, name)
                continue
            self._unschedulable.discard(uid)
            await self.api.patch(Pod, name, {"spec": {"nodeName": self.info.name}}, namespace=ns)
            log.info("scheduled pod %s", kv(cluster=self.cluster, pod=f"{ns}/{name}", node=self.info.name))

    async def _unschedulable_status(self, ns: str, name: str) -> None:
        now = rfc3339.format(self.clock.wall())
        cond = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
            "lastTransitionTime": now,
        }
        await self.api.patch(
            Pod.Status, name, {"status": {"phase": "Pending", "conditions": [cond]}}, namespace=ns
        )
        log.info("pod unschedulable %s", kv(cluster=self.cluster, pod=f"{ns}/{name}"))
