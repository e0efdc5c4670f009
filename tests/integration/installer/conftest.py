"""Two fresh in-process dev clusters per test, behind one kubeconfig (tests/support/installenv.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import clusters, installenv


@pytest.fixture
def env(tmp_path: Path) -> Iterator[installenv.Env]:
    c1 = clusters.ThreadedCluster(name="cluster1").start()
    c2 = clusters.ThreadedCluster(name="cluster2").start()
    try:
        kc = tmp_path / "kubeconfig"
        kc.write_text(clusters.merged_kubeconfig(c1.kubeconfig, c2.kubeconfig))
        yield installenv.Env(c1, c2, kc, tmp_path)
    finally:
        c1.close()
        c2.close()
