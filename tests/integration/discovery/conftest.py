"""Two dev clusters and an in-process `meshplane discovery` for cluster1 with cluster2 attached."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube.models import core_v1 as m
from lightkube.models import discovery_v1 as d
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1, discovery_v1

from meshplane.discovery import app, options
from tests.support.clusters import ThreadedCluster, lightkube_client

NS = "istio-system"


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadedCluster, ThreadedCluster]]:
    a = ThreadedCluster("cluster1", data_dir=tmp_path_factory.mktemp("cluster1")).start()
    b = ThreadedCluster("cluster2", data_dir=tmp_path_factory.mktemp("cluster2")).start()
    yield a, b
    a.close()
    b.close()


async def ensure_ns(client: Any, name: str) -> None:
    try:
        await client.create(core_v1.Namespace(metadata=ObjectMeta(name=name)))
    except Exception:
        pass


async def add_service(client: Any, ns: str, name: str, port: int = 5000) -> None:
    await ensure_ns(client, ns)
    await client.create(
        core_v1.Service(
            metadata=ObjectMeta(name=name, namespace=ns),
            spec=m.ServiceSpec(ports=[m.ServicePort(name="http", port=port)], selector={"app": name}),
        )
    )


async def set_slice(
    client: Any, ns: str, name: str, eps: list[tuple[str, bool, bool]], port: int = 5000
) -> None:
    """eps: (ip, ready, terminating)."""
    sl = discovery_v1.EndpointSlice(
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
    try:
        existing = await client.get(discovery_v1.EndpointSlice, f"{name}-x", namespace=ns)
        sl.metadata.resourceVersion = existing.metadata.resourceVersion
        await client.replace(sl)
    except Exception:
        await client.create(sl)


def remote_secret(c: ThreadedCluster, name: str = "cluster2", comment: str = "") -> core_v1.Secret:
    text = (f"# {comment}\n" if comment else "") + yaml.safe_dump(c.kubeconfig)
    return core_v1.Secret(
        metadata=ObjectMeta(
            name=f"istio-remote-secret-{name}",
            namespace=NS,
            labels={"istio/multiCluster": "true"},
            annotations={"networking.istio.io/cluster": name},
        ),
        data={name: base64.b64encode(text.encode()).decode()},
    )


@pytest.fixture
async def discovery(
    clusters: tuple[ThreadedCluster, ThreadedCluster], tmp_path: Path
) -> AsyncIterator[app.Discovery]:
    c1, _ = clusters
    kc = c1.write_kubeconfig(tmp_path / "kubeconfig")
    w = lightkube_client(c1.kubeconfig)
    await ensure_ns(w, NS)
    await w.close()
    opts = options.build(
        {
            "kubeconfig": str(kc),
            "context": "cluster1",
            "cluster_id": "cluster1",
            "network": "network1",
            "bind_address": "127.0.0.1",
            "xds_plaintext_port": 0,
            "secure_grpc_port": 0,
            "monitoring_port": 0,
            "webhook_port": 0,
            "debounce_after": "20ms",
            "debounce_max": "1s",
            "remote_cluster_timeout": "5s",
            "pod_name": "istiod-test",
        },
        {},
    )
    server = app.Discovery(opts)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        w = lightkube_client(c1.kubeconfig)
        async for s in w.list(core_v1.Secret, namespace=NS, labels={"istio/multiCluster": "true"}):
            await w.delete(core_v1.Secret, s.metadata.name, namespace=NS)
        await w.close()
