"""A dev cluster on the test's own event loop (not a thread, unlike clusters.ThreadedCluster), with
an admin lightkube client and helpers for service accounts, tokens and restricted clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightkube
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.core_v1 import ServiceAccount, ServiceAccountToken
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

from meshplane.devcluster import app as devcluster_app
from tests.support import kubeobjects
from tests.support.clusters import unique

__all__ = ["Cluster", "start_cluster", "unique"]


@dataclass
class Cluster:
    name: str
    dev: devcluster_app.DevCluster
    admin: lightkube.AsyncClient
    data_dir: Path

    async def namespace(self, name: str) -> None:
        await kubeobjects.ensure_namespace(self.admin, name)

    async def service_account(self, namespace: str, name: str) -> None:
        await self.namespace(namespace)
        try:
            await self.admin.create(ServiceAccount(metadata=ObjectMeta(name=name, namespace=namespace)))
        except lightkube.ApiError as e:
            if e.status.code != 409:
                raise

    async def token(
        self, namespace: str, sa: str, audiences: list[str] | None = None, seconds: int = 3600
    ) -> str:
        res = await self.admin.create(
            ServiceAccountToken(
                metadata=ObjectMeta(namespace=namespace),
                spec=TokenRequestSpec(
                    audiences=(audiences or None) if audiences is not None else ["istio-ca"],
                    expirationSeconds=seconds,
                ),
            ),
            name=sa,
            namespace=namespace,
        )
        return str(res.status.token)

    async def reader_client(self) -> lightkube.AsyncClient:
        """A client with only the remote-secret reader's rights (istio-reader-service-account):
        what the control plane has for a remote cluster."""
        ns, sa = "istio-system", "istio-reader-service-account"
        await self.service_account(ns, sa)
        role = "istio-reader-clusterrole-istio-system"
        for obj in (
            ClusterRole(
                metadata=ObjectMeta(name=role),
                rules=[
                    PolicyRule(
                        apiGroups=["authentication.k8s.io"], resources=["tokenreviews"], verbs=["create"]
                    )
                ],
            ),
            ClusterRoleBinding(
                metadata=ObjectMeta(name=role),
                roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="ClusterRole", name=role),
                subjects=[Subject(kind="ServiceAccount", name=sa, namespace=ns)],
            ),
        ):
            try:
                await self.admin.create(obj)
            except lightkube.ApiError as e:
                if e.status.code != 409:
                    raise
        return await self.client_as(ns, sa)

    async def client_as(self, namespace: str, sa: str) -> lightkube.AsyncClient:
        """A client authenticated as the ServiceAccount (API-audience token)."""
        token = await self.token(namespace, sa, audiences=[], seconds=3600 * 24)
        cfg = self.dev.kubeconfig_dict()
        for user in cfg["users"]:
            user["user"] = {"token": token}
        return lightkube.AsyncClient(config=lightkube.KubeConfig.from_dict(cfg))


async def start_cluster(name: str, data_dir: Path) -> Cluster:
    """A dev cluster on the running loop (so a test may use its internals directly), with an admin
    client."""
    dev = devcluster_app.DevCluster(name=name, data_dir=data_dir, host="127.0.0.1", port=0)
    await dev.start()
    admin = lightkube.AsyncClient(config=lightkube.KubeConfig.from_dict(dev.kubeconfig_dict()))
    return Cluster(name, dev, admin, data_dir)
