"""kube-proxy's iptables mode for a lab cluster whose pods have their own network namespaces.

Each TCP port of each Service is DNAT'ed to one of its endpoints, picked at random per connection
(the `statistic` match with probabilities 1/n, 1/(n-1), …, 1, as kube-proxy's KUBE-SVC chains do),
for its ClusterIP and, for `type: LoadBalancer`, its `status.loadBalancer.ingress[].ip` (kube-proxy
does this for LoadBalancer IPs too, so in-cluster traffic to them never leaves the node).
Endpoints are chosen as in `kubeproxy.backends`: ready ones, else serving-and-terminating ones
(ProxyTerminatingEndpoints). A Service port with no endpoint gets no rule: the lab's reject chain
(`lab/network/firewall.py`) refuses it at once, as kube-proxy's REJECT does.

An endpoint that is itself a frontend of this cluster (a selectorless Service whose slice points
at a LoadBalancer address: cluster2's `istiod` → the east-west gateway's address) is replaced by
that frontend's endpoints, because a packet is DNAT'ed only once: on a cloud the second hop is the
load balancer's, outside the node.

The whole chain (`mp-LABID-CLUSTER`, made by `lab up`) is replaced at once with
`iptables-restore --noflush` (the chain's declaration flushes it; nothing else is touched), and
only when the rules changed. Not done: hairpin masquerade (a pod reaching itself through its own
Service's ClusterIP without a sidecar), session affinity, UDP.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

from meshplane.lab import watchcache
from meshplane.lab.network import command
from meshplane.lab.node import kubeproxy
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

MAX_HOPS = 4  # frontend → frontend chains followed (a loop stops here)


def in_ranges(cidrs: list[str]) -> Callable[[str], bool]:
    nets = [ipaddress.ip_network(c) for c in cidrs]

    def serves(ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in n for n in nets)

    return serves


def table(
    services: list[Obj], slices_of: Callable[[kubeproxy.Route], list[Obj]], serves: Callable[[str], bool]
) -> dict[kubeproxy.Frontend, list[tuple[str, int]]]:
    """Every frontend of `services` that `serves` accepts → the endpoints it is DNAT'ed to."""
    routes: dict[kubeproxy.Frontend, kubeproxy.Route] = {}
    for svc in services:
        for fe, route in kubeproxy.frontends(svc, serves):
            routes.setdefault(fe, route)
    direct = {fe: kubeproxy.backends(slices_of(r), r.port_name) for fe, r in routes.items()}

    def expand(targets: list[tuple[str, int]], hops: int) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for ip, port in targets:
            inner = kubeproxy.Frontend(ip, port)
            if inner in direct and hops < MAX_HOPS:
                out.extend(expand(direct[inner], hops + 1))
            elif inner not in direct:
                out.append((ip, port))
        return sorted(set(out))

    return {fe: expand(targets, 0) for fe, targets in direct.items()}


def render(chain: str, targets: dict[kubeproxy.Frontend, list[tuple[str, int]]]) -> str:
    """`iptables-restore --noflush` input that replaces `chain` with the DNAT rules of `targets`."""
    lines = ["*nat", f":{chain} - [0:0]"]
    for fe in sorted(targets, key=lambda f: (ipaddress.ip_address(f.ip), f.port)):
        eps = targets[fe]
        for i, (ip, port) in enumerate(eps):
            rule = f"-A {chain} -d {fe.ip}/32 -p tcp -m tcp --dport {fe.port}"
            left = len(eps) - i
            if left > 1:
                rule += f" -m statistic --mode random --probability {1 / left:.11f}"
            lines.append(f"{rule} -j DNAT --to-destination {ip}:{port}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class ServiceNat:
    """Keeps one cluster's nat chain equal to its Services and EndpointSlices."""

    def __init__(
        self,
        services: watchcache.WatchCache,
        slices: watchcache.WatchCache,
        cluster: str,
        chain: str,
        serves: Callable[[str], bool],
    ) -> None:
        self.services, self.slices, self.cluster, self.chain, self.serves = (
            services,
            slices,
            cluster,
            chain,
            serves,
        )
        self.trigger = watchcache.Trigger()
        self._applied: str | None = None
        services.add_handler(self.trigger.fire)
        slices.add_handler(self.trigger.fire)

    def slices_of(self, route: kubeproxy.Route) -> list[Obj]:
        return kubeproxy.slices_of(self.slices, route)

    async def run(self) -> None:
        await self.services.wait_synced()
        await self.slices.wait_synced()
        await watchcache.reconcile_loop("service nat", self.cluster, self.trigger, self.sync, 10.0)

    async def sync(self) -> None:
        targets = table(self.services.items(), self.slices_of, self.serves)
        text = render(self.chain, targets)
        if text == self._applied:
            return
        await command.run("iptables-restore", "-w", "--noflush", stdin=text.encode())
        self._applied = text
        log.info(
            "service rules applied %s",
            kv(
                cluster=self.cluster,
                chain=self.chain,
                frontends=len(targets),
                without_endpoints=sum(1 for t in targets.values() if not t),
            ),
        )
