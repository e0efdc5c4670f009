"""A dev cluster (in-process, loopback service range) and its lab node runtime (a real
`python -m meshplane lab node` subprocess) per test module; a fresh namespace per test.

Each module gets its own random address plan (127.B.*) so that test runs never collide with a
lab, or another test run, on the same machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import clusters, labnode


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labnode.LabNode]:
    base = labnode.address_base()
    work = tmp_path_factory.mktemp("lab")
    c = clusters.ThreadedCluster(name="cluster1", service_cidr=f"127.{base}.10.0/24").start()
    kubeconfig = c.write_kubeconfig(work / "kubeconfig")
    proc, log = labnode.start_node(kubeconfig, work / "node", base)
    n = labnode.LabNode(c, kubeconfig, work / "node", base, proc, log)
    try:
        yield n
    finally:
        labnode.stop(proc)
        c.close()
        leftovers = [p for p in (n.dir / "pods").rglob("*.pid") if labnode.alive(labnode.pid_of(p))]
        assert not leftovers, f"processes left running: {leftovers}"


@pytest.fixture
def ns(node: labnode.LabNode) -> str:
    name = clusters.unique("t")
    node.kubectl("create", "namespace", name)
    return name
