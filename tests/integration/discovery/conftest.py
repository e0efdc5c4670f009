"""An in-process `meshplane discovery` for cluster1 of the module's two dev clusters (`clusters`,
tests/support/clusterfixtures.py); remote secrets attach cluster2."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lightkube.resources import core_v1

from meshplane.discovery import app, options
from tests.support import kubeobjects
from tests.support.clusters import ThreadedCluster, lightkube_client

NS = kubeobjects.ISTIO_SYSTEM


@pytest.fixture
async def discovery(
    clusters: tuple[ThreadedCluster, ThreadedCluster], tmp_path: Path
) -> AsyncIterator[app.Discovery]:
    c1, _ = clusters
    kc = c1.write_kubeconfig(tmp_path / "kubeconfig")
    w = lightkube_client(c1.kubeconfig)
    await kubeobjects.ensure_namespace(w, NS)
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
