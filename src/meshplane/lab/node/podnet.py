"""Pod network namespaces of one lab node (netns mode): what a CNI plugin and the kubelet's sandbox
do for a Pod on a real node.

For each Pod (keyed by uid, so a replacement Pod with the same name gets a fresh namespace):
a namespace `mp-LABID-…` with `lo` up and `eth0` (the pod IP as a /32, routes for the lab's ranges
via the gateway; `lab/network/links.py`), and its resolver files `/etc/netns/NS/hosts` (the
cluster's Services, with bare names for the pod's own namespace) and `resolv.conf`, which
`ip netns exec` mounts over /etc for every container process. Everything is recorded in the
node's ledger (`nodes/CLUSTER/network.ledger`) before it is made; `remove` deletes a Pod's
namespace (its veth goes with it) and resolver files when the Pod ends, and `lab down` cleans up
whatever a crashed node left.

`exec_prefix` is how a container's process is started in the Pod: `ip netns exec NS` and, for a
container whose securityContext runs it as another user (the sidecar: uid 1337, whose traffic
the capture rules exempt), `setpriv --reuid --regid --clear-groups`. The lab has no image
filesystems (a container's files are the host's, under root's folders), so such a process keeps
CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE as ambient capabilities to read its program and write
its volumes; its identity for the network, what capture looks at, is the uid it asks for.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from meshplane.lab import errors
from meshplane.lab.network import command, links, names, resolver
from meshplane.lab.network import ledger as ledgers
from meshplane.lab.network import plan as plans
from meshplane.lab.node import dns, podspec
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

DAC_CAPS = "+dac_read_search,+dac_override"


@dataclass(slots=True)
class PodNetns:
    netns: str
    namespace: str
    ip: str
    hostname: str


def run_as(pod: Obj, container: Obj) -> tuple[int | None, int | None]:
    """(runAsUser, runAsGroup) of a container: its own securityContext over the pod's."""
    pod_ctx = podspec.spec(pod).get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    user, group = (
        ctx.get("runAsUser", pod_ctx.get("runAsUser")),
        ctx.get("runAsGroup", pod_ctx.get("runAsGroup")),
    )
    for what, v in (("runAsUser", user), ("runAsGroup", group)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise errors.ContainerConfigError(f"securityContext.{what}: {v!r} is not a user/group id")
    return user, group


class PodNetworks:
    def __init__(
        self,
        plan: plans.NetworkPlan,
        cluster: str,
        folder: Path,
        domain: str = "cluster.local",
        etc_netns: Path = resolver.ETC_NETNS,
    ) -> None:
        self.plan, self.net = plan, plan.cluster(cluster)
        self.ledger = ledgers.Ledger(folder)
        self.domain, self.etc_netns = domain, etc_netns
        self.pods: dict[str, PodNetns] = {}
        self.services: list[dns.Entry] = []
        self._lock = asyncio.Lock()  # hosts rewrites never interleave with a pod's setup

    @property
    def node_ip(self) -> str:
        return self.net.gateway

    def netns_of(self, uid: str) -> str:
        return names.netns(self.plan.lab_id, uid)

    async def setup(self, uid: str, namespace: str, hostname: str, ip: str) -> str:
        """The Pod's namespace, veth and resolver files (made again from scratch if a previous node
        runtime left them); its name."""
        netns = self.netns_of(uid)
        async with self._lock:
            if netns in await ledgers.netns_names():  # a node runtime restart: start clean
                await command.run("ip", "netns", "delete", netns)
            await links.make_netns(self.ledger, netns)
            await links.attach(
                self.ledger,
                netns=netns,
                host_if=names.host_veth(self.plan.lab_id, uid),
                bridge=self.net.bridge,
                pods=self.net.ranges.pods,
                ip=ip,
                routes=self.plan.every_range(),
            )
            await resolver.write(
                self.ledger,
                netns,
                namespace=namespace,
                pod_ip=ip,
                hostname=hostname,
                extra_hosts=dns.pod_hosts(self.services, namespace, self.domain),
                root=self.etc_netns,
            )
            self.pods[uid] = PodNetns(netns, namespace, ip, hostname)
        log.info("pod network %s", kv(netns=netns, ip=ip, bridge=self.net.bridge))
        return netns

    async def remove(self, uid: str) -> None:
        async with self._lock:
            pod = self.pods.pop(uid, None)
            netns = pod.netns if pod else self.netns_of(uid)
            if netns in await ledgers.netns_names():
                await command.run("ip", "netns", "delete", netns)
            await asyncio.to_thread(shutil.rmtree, self.etc_netns / netns, True)

    async def services_changed(self, found: list[dns.Entry]) -> None:
        """Rewrite every pod's hosts file in place for the cluster's new Service addresses."""
        async with self._lock:
            self.services = found
            for pod in list(self.pods.values()):
                try:
                    await asyncio.to_thread(
                        resolver.rewrite_hosts,
                        pod.netns,
                        pod_ip=pod.ip,
                        hostname=pod.hostname,
                        extra_hosts=dns.pod_hosts(found, pod.namespace, self.domain),
                        root=self.etc_netns,
                    )
                except OSError as e:
                    log.warning("pod hosts file not updated %s", kv(netns=pod.netns, error=e))

    def exec_prefix(self, netns: str, pod: Obj, container: Obj) -> list[str]:
        return exec_prefix(netns, pod, container)


def exec_prefix(netns: str, pod: Obj, container: Obj) -> list[str]:
    """argv to put before a container's command to run it in the pod (see the module doc); also
    what `lab exec` runs a command with, as `kubectl exec` runs it as the container's user."""
    prefix = ["ip", "netns", "exec", netns]
    user, group = run_as(pod, container)
    if (user or 0) == 0 and (group or 0) == 0:
        return prefix
    priv = ["setpriv", "--clear-groups"]
    if user is not None:
        priv.append(f"--reuid={user}")
    if group is not None:
        priv.append(f"--regid={group}")
    priv += [f"--inh-caps={DAC_CAPS}", f"--ambient-caps={DAC_CAPS}", "--"]
    return [*prefix, *priv]
