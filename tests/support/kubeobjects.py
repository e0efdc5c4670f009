"""Namespace, Service and EndpointSlice builders for tests that drive a dev cluster with lightkube."""

from __future__ import annotations

import base64
from typing import Any

import lightkube
import yaml
from lightkube.models import core_v1 as m
from lightkube.models import discovery_v1 as d
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1, discovery_v1

ISTIO_SYSTEM = "istio-system"

Endpoint = tuple[str, bool, bool]
"""(ip, ready, terminating)."""


async def ensure_namespace(client: Any, name: str) -> None:
    """Create the namespace unless it exists."""
    try:
        await client.create(core_v1.Namespace(metadata=ObjectMeta(name=name)))
    except lightkube.ApiError as e:
        if e.status.code != 409:
            raise


async def add_service(client: Any, ns: str, name: str, port: int = 5000) -> None:
    """A Service `name` (one `http` port, selector app=name) in `ns`, created with its namespace."""
    await ensure_namespace(client, ns)
    await client.create(
        core_v1.Service(
            metadata=ObjectMeta(name=name, namespace=ns),
            spec=m.ServiceSpec(ports=[m.ServicePort(name="http", port=port)], selector={"app": name}),
        )
    )


def endpoint_slice(ns: str, name: str, eps: list[Endpoint], port: int = 5000) -> discovery_v1.EndpointSlice:
    """Service `name`'s one EndpointSlice (`name-x`), an endpoint per (ip, ready, terminating)."""
    return discovery_v1.EndpointSlice(
        addressType="IPv4",
        metadata=ObjectMeta(name=f"{name}-x", namespace=ns, labels={"kubernetes.io/service-name": name}),
        ports=[d.EndpointPort(name="http", port=port)],
        endpoints=[
            d.Endpoint(
                addresses=[ip], conditions=d.EndpointConditions(ready=r, serving=r or t, terminating=t)
            )
            for ip, r, t in eps
        ],
    )


async def set_slice(client: Any, ns: str, name: str, eps: list[Endpoint], port: int = 5000) -> None:
    """Create or replace service `name`'s EndpointSlice."""
    sl = endpoint_slice(ns, name, eps, port)
    try:
        existing = await client.get(discovery_v1.EndpointSlice, f"{name}-x", namespace=ns)
    except lightkube.ApiError as e:
        if e.status.code != 404:
            raise
        await client.create(sl)
        return
    sl.metadata.resourceVersion = existing.metadata.resourceVersion
    await client.replace(sl)


def remote_secret(kubeconfig: dict[str, Any], name: str = "cluster2", comment: str = "") -> core_v1.Secret:
    """istioctl's remote secret for cluster `name`: its kubeconfig (after an optional YAML comment)."""
    text = (f"# {comment}\n" if comment else "") + yaml.safe_dump(kubeconfig)
    return core_v1.Secret(
        metadata=ObjectMeta(
            name=f"istio-remote-secret-{name}",
            namespace=ISTIO_SYSTEM,
            labels={"istio/multiCluster": "true"},
            annotations={"networking.istio.io/cluster": name},
        ),
        data={name: base64.b64encode(text.encode()).decode()},
    )
