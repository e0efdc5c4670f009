"""The node runtime's writes to its dev cluster, as dicts in and out, through lightkube.

Every write goes through the cluster's REST API, so admission (sidecar injection included)
applies to the Pods the lab creates exactly as it would to a kubelet's or a controller's.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lightkube
from lightkube.core import exceptions as lk_exceptions
from lightkube.models.authentication_v1 import BoundObjectReference, TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod, ServiceAccount
from lightkube.types import PatchType

from meshplane.kube import client as kube_client
from meshplane.kube import errors as kube_errors
from meshplane.lab import watchcache
from meshplane.runtime.jsonobj import Obj


def client(
    kubeconfig: Path, context: str | None, field_manager: str = "meshplane-lab"
) -> lightkube.AsyncClient:
    """A client for one context of a lab kubeconfig file (blocking: run in a thread)."""
    cfg = kube_client.load_file_config(str(kubeconfig), context)
    return kube_client.make_client(cfg, field_manager=field_manager)


async def list_pods(kubeconfig: Path) -> list[Obj]:
    """Every Pod of the cluster a lab kubeconfig names, as dicts (`lab status`)."""
    api = await asyncio.to_thread(client, kubeconfig, None)
    try:
        return [p.to_dict() async for p in api.list(Pod, namespace="*")]
    finally:
        await api.close()


async def get_pod(kubeconfig: Path, namespace: str, name: str) -> Obj:
    """One Pod as a dict (`lab exec`)."""
    api = await asyncio.to_thread(client, kubeconfig, None)
    try:
        return dict((await api.get(Pod, name, namespace=namespace)).to_dict())
    finally:
        await api.close()


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int


def server_of(kubeconfig: Path, context: str | None) -> Server:
    """The API server's host and port, for the in-cluster env of the lab's pods (blocking)."""
    cfg = kube_client.load_file_config(str(kubeconfig), context)
    parts = urlsplit(cfg.cluster.server or "")
    if not parts.hostname:
        raise ValueError(f"{kubeconfig}: context {cfg.context_name!r} has no server URL")
    return Server(parts.hostname, parts.port or 443)


def ca_pem_of(kubeconfig: Path, context: str | None) -> bytes:
    """The cluster's CA (certificate-authority-data or -authority file) as PEM (blocking)."""
    cfg = kube_client.load_file_config(str(kubeconfig), context)
    if cfg.cluster.certificate_auth_data:
        return base64.b64decode(cfg.cluster.certificate_auth_data)
    if cfg.cluster.certificate_auth:
        return Path(cfg.abs_file(cfg.cluster.certificate_auth)).read_bytes()
    raise ValueError(f"{kubeconfig}: context {cfg.context_name!r} names no certificate authority")


class Api:
    def __init__(self, client: lightkube.AsyncClient) -> None:
        self.client = client

    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj:
        created = await self.client.create(res.from_dict(obj), namespace=namespace)
        return watchcache.to_dict(created)

    async def patch(self, res: Any, name: str, patch: Obj, namespace: str | None = None) -> Obj:
        """A JSON merge patch (use `res.Status` for the status subresource)."""
        out = await self.client.patch(res, name, patch, namespace=namespace, patch_type=PatchType.MERGE)
        return watchcache.to_dict(out)

    async def delete(
        self, res: Any, name: str, namespace: str | None = None, grace: int | None = None
    ) -> None:
        try:
            await self.client.delete(res, name, namespace=namespace, grace_period=grace)
        except lk_exceptions.ApiError as e:
            if not kube_errors.is_not_found(e):
                raise

    async def token(
        self, namespace: str, service_account: str, audiences: list[str], seconds: int, pod: Obj
    ) -> tuple[str, float]:
        """A TokenRequest bound to the pod: (token, expiry as a UNIX time)."""
        m = pod.get("metadata") or {}
        req = ServiceAccount.Token(
            metadata=ObjectMeta(name=service_account, namespace=namespace),
            spec=TokenRequestSpec(
                audiences=audiences,
                expirationSeconds=seconds,
                boundObjectRef=BoundObjectReference(
                    apiVersion="v1", kind="Pod", name=m.get("name"), uid=m.get("uid")
                ),
            ),
        )
        out = await self.client.create(req, service_account, namespace=namespace)
        status = out.status
        expiry = status.expirationTimestamp
        if isinstance(expiry, datetime):
            when = expiry.timestamp()
        else:
            when = datetime.fromisoformat(str(expiry).replace("Z", "+00:00")).timestamp()
        return str(status.token), when
