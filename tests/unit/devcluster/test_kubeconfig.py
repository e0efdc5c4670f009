"""devcluster.kubeconfig: the kubeconfig documents the dev cluster writes."""

from __future__ import annotations

from meshplane.devcluster import kubeconfig


def test_kubeconfig_merge_keeps_every_context() -> None:
    a = kubeconfig.build("c1", "https://127.0.0.1:1", b"ca1", "t1")
    b = kubeconfig.build("c2", "https://127.0.0.1:2", b"ca2", "t2")
    merged = kubeconfig.merge([a, b], current="c2")
    assert [c["name"] for c in merged["contexts"]] == ["c1", "c2"]
    assert merged["current-context"] == "c2"
    assert merged["users"][1]["user"]["token"] == "t2"
