"""`meshplane lab node`: the node runtime of one lab cluster (its composition root).

One process per dev cluster does, for that cluster and through its API (lightkube), what a real
cluster's control-plane controllers and its one node do:

| piece                      | module                         | Kubernetes counterpart                  |
|----------------------------|--------------------------------|-----------------------------------------|
| Deployments, ReplicaSets   | controllers/deployments.py     | kube-controller-manager's controllers   |
| binding Pods, the Node     | controllers/scheduler.py       | kube-scheduler, node registration       |
| Pods as processes          | node/kubelet.py                | kubelet (+ podworker, volumes, probes)  |
| logs, exec, attach         | node/kubeletapi.py             | the kubelet's API (port 10250)          |
| EndpointSlices             | controllers/endpointslices.py  | the EndpointSlice controller            |
| Service forwarding         | node/kubeproxy.py (loopback),  | kube-proxy (userspace; iptables mode)   |
|                            | node/servicenat.py (netns)     |                                         |
| pod network namespaces     | node/podnet.py (netns mode)    | the CNI plugin, the sandbox             |
| LoadBalancer addresses     | controllers/loadbalancers.py   | a cloud's LoadBalancer provider         |
| Service names              | node/dns.py                    | cluster DNS (CoreDNS)                   |

All state lives under `--dir`: pods/ (see volumes.py), hosts (the cluster's hosts file).
Stopping (SIGTERM/SIGINT) stops every process the node started, by PID, and leaves the Pods in
the API; a restarted node runtime runs them again with the same IPs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import lightkube
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import ConfigMap, Pod, Secret, Service
from lightkube.resources.discovery_v1 import EndpointSlice

from meshplane.lab import addresses, kubeapi, watchcache
from meshplane.lab.controllers import deployments, endpointslices, loadbalancers, scheduler
from meshplane.lab.network import firewall
from meshplane.lab.network import plan as plans
from meshplane.lab.node import dns, kubelet, kubeletapi, kubeproxy, podnet, servicenat
from meshplane.lab.node import settings as settings_mod
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import tasks
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeOptions:
    cluster: str
    kubeconfig: Path
    context: str | None
    dir: Path
    pod_cidr: str
    local_cidr: str
    lb_cidr: str
    lb_claims: Path
    region: str
    zone: str
    cluster_domain: str = "cluster.local"
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    termination_delay: float = 1.0
    network_plan: Path | None = None  # netns mode: the lab's network plan (lab/network/plan.py)

    @property
    def node_name(self) -> str:
        return f"{self.cluster}-node"

    @property
    def hosts_file(self) -> Path:
        return self.dir / "hosts"


def validate(o: NodeOptions) -> None:
    """Raise ValueError naming the first bad option."""
    if not o.cluster or "/" in o.cluster:
        raise ValueError(f"invalid cluster name {o.cluster!r}")
    if o.network_plan is not None:  # netns mode: the plan's ranges, checked by `lab up`
        c = plans.load(o.network_plan).cluster(o.cluster).ranges
        if (str(c.pods.net), str(c.load_balancers.net)) != (o.pod_cidr, o.lb_cidr):
            raise ValueError(
                f"--pod-cidr {o.pod_cidr} / --lb-cidr {o.lb_cidr} differ from the network plan's "
                f"{c.pods.net} / {c.load_balancers.net}"
            )
    else:
        _loopback_ranges(o)
    if o.backoff_initial <= 0 or o.backoff_max < o.backoff_initial:
        raise ValueError("restart backoff: need 0 < initial <= max")
    if o.termination_delay < 0:
        raise ValueError("termination delay must not be negative")


def _loopback_ranges(o: NodeOptions) -> None:
    addresses.network(o.pod_cidr)
    addresses.network(o.lb_cidr)
    addresses.local_address(str(addresses.PodIPs(o.pod_cidr).node_ip), o.pod_cidr, o.local_cidr)
    if addresses.network(o.pod_cidr).overlaps(addresses.network(o.local_cidr)):
        raise ValueError(f"pod range {o.pod_cidr} and local range {o.local_cidr} overlap")


class NodeRuntime:
    def __init__(self, options: NodeOptions, clock: clock_mod.Clock | None = None) -> None:
        validate(options)
        self.options = options
        self.clock: clock_mod.Clock = clock or clock_mod.SystemClock()
        self._group = tasks.TaskGroup(f"lab-node/{options.cluster}")
        self.kubelet: kubelet.Kubelet | None = None
        self.client: lightkube.AsyncClient | None = None
        self.kubelet_api: kubeletapi.KubeletServer | None = None

    async def start(self) -> None:
        o = self.options
        await asyncio.to_thread(o.dir.mkdir, parents=True, exist_ok=True)
        server = await asyncio.to_thread(kubeapi.server_of, o.kubeconfig, o.context)
        self.client = await asyncio.to_thread(kubeapi.client, o.kubeconfig, o.context)
        api = kubeapi.Api(self.client)
        caches = {
            name: watchcache.WatchCache(self.client, res, o.cluster)
            for name, res in (
                ("pods", Pod),
                ("services", Service),
                ("slices", EndpointSlice),
                ("configmaps", ConfigMap),
                ("secrets", Secret),
                ("deployments", Deployment),
                ("replicasets", ReplicaSet),
            )
        }
        network: podnet.PodNetworks | None = None
        if o.network_plan is not None:
            plan = await asyncio.to_thread(plans.load, o.network_plan)
            network = podnet.PodNetworks(plan, o.cluster, o.dir, o.cluster_domain)
        loopback = network is None
        node_ip = addresses.PodIPs(o.pod_cidr, loopback).node_ip
        ca_pem = await asyncio.to_thread(kubeapi.ca_pem_of, o.kubeconfig, o.context)
        self.kubelet_api = kubeletapi.KubeletServer(node_ip, ca_pem)
        port = await self.kubelet_api.start()
        self._group.on_stop(self.kubelet_api.stop)
        info = scheduler.NodeInfo(o.node_name, node_ip, o.pod_cidr, o.region, o.zone, kubelet_port=port)
        sched = scheduler.Scheduler(api, caches["pods"], info, o.cluster, self.clock)
        await sched.register()
        eps = endpointslices.EndpointSlices(
            api, caches["services"], caches["pods"], caches["slices"], o.zone, o.cluster
        )
        settings = settings_mod.Settings(
            node=info,
            root=o.dir,
            pod_cidr=o.pod_cidr,
            local_cidr=o.local_cidr,
            api_server=server,
            hosts_file=o.hosts_file,
            backoff_initial=o.backoff_initial,
            backoff_max=o.backoff_max,
            termination_delay=o.termination_delay,
            network=network,
        )
        self.kubelet = kubelet.Kubelet(
            api,
            caches["pods"],
            caches["configmaps"],
            caches["secrets"],
            settings,
            eps.not_ready,
            self.clock,
            o.cluster,
        )
        self.kubelet_api.serve(self.kubelet)
        cluster_dns = dns.ClusterDns(
            caches["services"], caches["slices"], o.hosts_file, o.cluster, o.cluster_domain
        )
        await cluster_dns.prepare()
        lbs = loadbalancers.LoadBalancers(
            api, caches["services"], addresses.LbClaims(o.lb_claims, o.lb_cidr, loopback), o.cluster
        )
        if network is None:
            svc_proxy = kubeproxy.ServiceProxy(caches["services"], caches["slices"], o.cluster)
        else:
            cluster_dns.listeners.append(network.services_changed)
            own = network.net.ranges
            svc_nat = servicenat.ServiceNat(
                caches["services"],
                caches["slices"],
                o.cluster,
                firewall.service_chain_name(network.plan.lab_id, o.cluster),
                servicenat.in_ranges([str(own.services.net), str(own.load_balancers.net)]),
            )
            self._group.start(svc_nat.run(), "service-nat")
            svc_proxy = kubeproxy.ServiceProxy(
                caches["services"],
                caches["slices"],
                o.cluster,
                servicenat.in_ranges([str(own.load_balancers.net)]),
            )
        rs_ctl = deployments.ReplicaSets(api, caches["replicasets"], caches["pods"], o.cluster, self.clock)
        deploy_ctl = deployments.Deployments(
            api, caches["deployments"], caches["replicasets"], caches["pods"], o.cluster, self.clock
        )
        for name, c in caches.items():
            self._group.start(c.run(), f"cache/{name}")
        self._group.start(cluster_dns.run(), "dns")
        self._group.start(svc_proxy.run(), "proxy")
        self._group.start(lbs.run(), "loadbalancer")
        self._group.start(eps.run(), "endpointslices")
        self._group.start(sched.run(), "scheduler")
        self._group.start(deploy_ctl.run(), "deployments")
        self._group.start(rs_ctl.run(), "replicasets")
        self._group.start(self.kubelet.run(), "kubelet")
        self._group.on_stop(self.kubelet.stop)  # stopped first: the pods' processes
        for c in caches.values():
            await c.wait_synced()
        log.info("node runtime ready %s", kv(cluster=o.cluster, node=o.node_name, ip=info.ip, dir=o.dir))

    async def stop(self) -> None:
        await self._group.stop()
        if self.client is not None:
            await self.client.close()
        log.info("node runtime stopped %s", kv(cluster=self.options.cluster))
