"""Config from the config (primary) cluster: the mesh ConfigMap, PeerAuthentication (mesh-wide for
the mesh config, every level for the policy config), AuthorizationPolicy, RequestAuthentication,
and the Istio networking objects (Gateway, VirtualService, DestinationRule, Sidecar) the proxies
are built from.

Istio reads this config from the config cluster only. A bad document is logged with its name and
reason and left out; the last good mesh config stays in force.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import lightkube
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources import core_v1

from meshplane.kube import informer as inf
from meshplane.model import mesh as mesh_mod
from meshplane.networking import config as net_config
from meshplane.policy import config as policy_config
from meshplane.registry import errors as registry_errors
from meshplane.registry import meshconfig
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import tasks
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

MESH_CONFIGMAP = "istio"
MESH_KEY = "mesh"

Gateway = create_namespaced_resource("networking.istio.io", "v1", "Gateway", "gateways")
VirtualService = create_namespaced_resource("networking.istio.io", "v1", "VirtualService", "virtualservices")
DestinationRule = create_namespaced_resource(
    "networking.istio.io", "v1", "DestinationRule", "destinationrules"
)
Sidecar = create_namespaced_resource("networking.istio.io", "v1", "Sidecar", "sidecars")
ServiceEntry = create_namespaced_resource("networking.istio.io", "v1", "ServiceEntry", "serviceentries")
PeerAuthentication = create_namespaced_resource(
    "security.istio.io", "v1", "PeerAuthentication", "peerauthentications"
)
AuthorizationPolicy = create_namespaced_resource(
    "security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"
)
RequestAuthentication = create_namespaced_resource(
    "security.istio.io", "v1", "RequestAuthentication", "requestauthentications"
)


class ConfigWatcher:
    def __init__(
        self,
        client: lightkube.AsyncClient,
        *,
        cluster_id: str,
        namespace: str,
        base_mesh: mesh_mod.MeshConfig,
        on_mesh: Callable[[mesh_mod.MeshConfig], None],
        on_networking: Callable[[net_config.NetworkingConfig], None],
        on_policy: Callable[[policy_config.PolicyConfig], None] | None = None,
        resync_period: float = 300.0,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        self.namespace = namespace
        self.base_mesh = base_mesh
        self._on_mesh = on_mesh
        self._on_networking = on_networking
        self.mesh = base_mesh
        self.networking = net_config.NetworkingConfig()
        self.problems: list[str] = []
        self._on_policy = on_policy
        self.policy = policy_config.PolicyConfig()
        self.policy_problems: list[str] = []
        common: dict[str, Any] = {"cluster_id": cluster_id, "resync_period": resync_period, "clock": clock}
        self.configmaps = inf.Informer(
            client, core_v1.ConfigMap, namespace=namespace, fields={"metadata.name": MESH_CONFIGMAP}, **common
        )
        self.peer_auth = inf.Informer(client, PeerAuthentication, missing_ok=True, **common)
        self.authz = inf.Informer(client, AuthorizationPolicy, missing_ok=True, **common)
        self.request_authn = inf.Informer(client, RequestAuthentication, missing_ok=True, **common)
        self.gateways = inf.Informer(client, Gateway, missing_ok=True, **common)
        self.virtual_services = inf.Informer(client, VirtualService, missing_ok=True, **common)
        self.destination_rules = inf.Informer(client, DestinationRule, missing_ok=True, **common)
        self.sidecars = inf.Informer(client, Sidecar, missing_ok=True, **common)
        self.service_entries = inf.Informer(client, ServiceEntry, missing_ok=True, **common)
        self.configmaps.add_handler(lambda _: self._mesh_changed())
        self.peer_auth.add_handler(lambda _: self._mesh_changed())
        self.peer_auth.add_handler(lambda _: self._policy_changed())
        self.authz.add_handler(lambda _: self._policy_changed())
        self.request_authn.add_handler(lambda _: self._policy_changed())
        self.gateways.add_handler(lambda _: self._networking_changed())
        self.virtual_services.add_handler(lambda _: self._networking_changed())
        self.destination_rules.add_handler(lambda _: self._networking_changed())
        self.sidecars.add_handler(lambda _: self._networking_changed())
        self.service_entries.add_handler(lambda _: self._networking_changed())
        self._group = tasks.TaskGroup(f"config/{cluster_id}")

    @property
    def informers(self) -> list[inf.Informer[Any]]:
        return [
            self.configmaps,
            self.peer_auth,
            self.authz,
            self.request_authn,
            self.gateways,
            self.virtual_services,
            self.destination_rules,
            self.sidecars,
            self.service_entries,
        ]

    @property
    def synced(self) -> bool:
        return all(i.synced for i in self.informers)

    def start(self) -> None:
        for informer in self.informers:
            self._group.start(informer.run(), informer.kind)

    async def stop(self) -> None:
        await self._group.stop()

    def _mesh_changed(self) -> None:
        cm = self.configmaps.get(MESH_CONFIGMAP, self.namespace)
        text = (cm.data or {}).get(MESH_KEY) if cm is not None else None
        try:
            parsed = meshconfig.parse(text, self.base_mesh)
        except registry_errors.MeshConfigError as e:
            log.error(
                "mesh config rejected, keeping the last good one %s",
                kv(cluster=self.cluster_id, configmap=f"{self.namespace}/{MESH_CONFIGMAP}", reason=e),
            )
            return
        mode = meshconfig.mtls_mode([_raw(p) for p in self.peer_auth.items()], parsed.root_namespace)
        new = mesh_mod.MeshConfig(
            trust_domain=parsed.trust_domain,
            mesh_id=parsed.mesh_id,
            root_namespace=parsed.root_namespace,
            mtls_mode=mode,
            outbound_traffic_policy=parsed.outbound_traffic_policy,
            cluster_local_hosts=parsed.cluster_local_hosts,
            not_cluster_local_hosts=parsed.not_cluster_local_hosts,
        )
        if new != self.mesh:
            self.mesh = new
            log.info(
                "mesh config updated %s", kv(cluster=self.cluster_id, mtls=mode.value, trust=new.trust_domain)
            )
            self._on_mesh(new)
            if new.root_namespace != self.networking.root_namespace:  # DestinationRule lookup uses it
                self._networking_changed()

    def _policy_changed(self) -> None:
        objects = [_raw(o) for i in (self.peer_auth, self.authz, self.request_authn) for o in i.items()]
        cfg, problems = policy_config.build(objects)
        self.policy_problems = [str(p) for p in problems]
        for p in problems:
            log.warning("security policy rejected %s", kv(cluster=self.cluster_id, reason=p))
        if cfg != self.policy:
            self.policy = cfg
            if self._on_policy is not None:
                self._on_policy(cfg)

    def _networking_changed(self) -> None:
        objects = [_raw(o) for o in self.gateways.items()] + [_raw(o) for o in self.virtual_services.items()]
        objects += [_raw(o) for o in self.destination_rules.items()]
        objects += [_raw(o) for o in self.sidecars.items()]
        objects += [_raw(o) for o in self.service_entries.items()]
        cfg, problems = net_config.build(objects, root_namespace=self.mesh.root_namespace)
        self.problems = [str(p) for p in problems]
        for p in problems:
            log.warning("networking config rejected %s", kv(cluster=self.cluster_id, reason=p))
        if cfg != self.networking:
            self.networking = cfg
            self._on_networking(cfg)


def _raw(obj: Any) -> Mapping[str, Any]:
    return obj if isinstance(obj, Mapping) else obj.to_dict()
