"""The dev-cluster fixtures, registered for the whole suite by tests/conftest.py (`pytest_plugins`).

- `cluster`: one in-process dev cluster (`ThreadedCluster`) per test module. A module changes how it
  is built by overriding `cluster_options` (keyword arguments of `ThreadedCluster`).
- `clusters`: two of them, `cluster1` and `cluster2`, per test module (multicluster tests).
Both are closed, threads joined, when the module ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.clusters import ThreadedCluster


@pytest.fixture(scope="module")
def cluster_options() -> dict[str, Any]:
    """Keyword arguments for the module's `cluster` (override in a test module)."""
    return {"name": "test"}


@pytest.fixture(scope="module")
def cluster(cluster_options: dict[str, Any]) -> Iterator[ThreadedCluster]:
    c = ThreadedCluster(**cluster_options).start()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadedCluster, ThreadedCluster]]:
    """Persistent (data dirs), so that a test may stop and restart one and find its objects again."""
    a = ThreadedCluster("cluster1", data_dir=tmp_path_factory.mktemp("cluster1")).start()
    try:
        b = ThreadedCluster("cluster2", data_dir=tmp_path_factory.mktemp("cluster2")).start()
    except BaseException:
        a.close()
        raise
    try:
        yield a, b
    finally:
        a.close()
        b.close()
