"""The LoadBalancer provider of a lab cluster.

A `type: LoadBalancer` Service gets an address from the lab's shared range (`127.0.3.0/24`,
unique across the lab's clusters through `addresses.LbClaims`) in
`status.loadBalancer.ingress[0].ip`; `spec.loadBalancerIP` is honoured when free. The service
proxy then listens on that address too. An address is released when its Service is deleted or
stops being a LoadBalancer.
"""

from __future__ import annotations

import asyncio
import logging

from lightkube.resources.core_v1 import Service

from meshplane.lab import addresses, errors, kubeapi, watchcache
from meshplane.lab.node import podspec
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)


def ingress_ips(service: Obj) -> list[str]:
    lb = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(i.get("ip")) for i in lb if isinstance(i, dict) and i.get("ip")]


class LoadBalancers:
    def __init__(
        self, api: kubeapi.Api, services: watchcache.WatchCache, claims: addresses.LbClaims, cluster: str
    ) -> None:
        self.api, self.services, self.claims, self.cluster = api, services, claims, cluster
        self.trigger = watchcache.Trigger()
        self._reported: dict[str, str] = {}  # owner → last error shown
        services.add_handler(self.trigger.fire)

    def owner(self, svc: Obj) -> str:
        m = podspec.meta(svc)
        return f"{self.cluster}/{m.get('namespace')}/{m.get('name')}"

    async def run(self) -> None:
        await self.services.wait_synced()
        await watchcache.reconcile_loop("loadbalancer provider", self.cluster, self.trigger, self.sync, 10.0)

    async def sync(self) -> None:
        wanted: set[str] = set()
        for svc in self.services.items():
            spec = svc.get("spec") or {}
            if spec.get("type") != "LoadBalancer" or podspec.meta(svc).get("deletionTimestamp"):
                continue
            owner = self.owner(svc)
            wanted.add(owner)
            preferred = str(spec.get("loadBalancerIP") or "")
            try:
                ip = await asyncio.to_thread(self.claims.claim, owner, preferred)
            except errors.AddressExhausted as e:
                if self._reported.get(owner) != str(e):
                    log.warning(
                        "no LoadBalancer address %s", kv(cluster=self.cluster, service=owner, error=e)
                    )
                    self._reported[owner] = str(e)
                continue
            await asyncio.to_thread(self.claims.release, owner, ip)
            if ingress_ips(svc) != [ip]:
                m = podspec.meta(svc)
                status = {"status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}}
                await self.api.patch(
                    Service.Status, str(m.get("name")), status, namespace=str(m.get("namespace"))
                )
                log.info("LoadBalancer address assigned %s", kv(cluster=self.cluster, service=owner, ip=ip))
        for owner in set((await asyncio.to_thread(self.claims.claims)).values()):
            if owner.startswith(f"{self.cluster}/") and owner not in wanted:
                await asyncio.to_thread(self.claims.release, owner)
