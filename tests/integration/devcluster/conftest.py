"""The module's dev cluster (`cluster`, tests/support/clusterfixtures.py): its kubeconfig, a lightkube
client, and a fresh namespace per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.support import clusters


@pytest.fixture(scope="module")
def kubeconfig_path(cluster: clusters.ThreadedCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cluster.write_kubeconfig(tmp_path_factory.mktemp("kc") / "config")


@pytest_asyncio.fixture
async def client(cluster: clusters.ThreadedCluster) -> AsyncIterator[Any]:
    c = clusters.lightkube_client(cluster.kubeconfig)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
def ns(cluster: clusters.ThreadedCluster) -> str:
    """A fresh namespace for one test."""
    name = clusters.unique("t")
    rt = cluster.cluster.registry.lookup("", "v1", "namespaces")
    assert rt is not None
    obj = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    cluster.call(lambda: cluster.cluster.objects.create(rt, obj))
    return name
