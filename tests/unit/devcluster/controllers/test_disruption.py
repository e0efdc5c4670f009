"""PodDisruptionBudget status arithmetic (the disruption controller's), over a store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from meshplane.devcluster.api import eviction
from meshplane.devcluster.controllers import disruption
from meshplane.devcluster.storage import persistence, store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import rfc3339


@pytest.fixture
async def st() -> AsyncIterator[store.Store]:
    s = store.Store(persistence.MemoryPersistence(), clock_mod.SystemClock())
    await s.open()
    yield s
    await s.close()


def _obj(kind: str, name: str, owner: tuple[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {"app": "web"}}
    if owner:
        md["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True, "uid": "u"}]
    return {"kind": kind, "metadata": md, **extra}


async def _setup(st: store.Store, ready: int, total: int) -> None:
    await st.create("apps/deployments", _obj("Deployment", "web", spec={"replicas": 4}))
    await st.create(
        "apps/replicasets", _obj("ReplicaSet", "web-1", ("Deployment", "web"), spec={"replicas": 4})
    )
    for i in range(total):
        cond = [{"type": "Ready", "status": "True" if i < ready else "False"}]
        await st.create("pods", _obj("Pod", f"p{i}", ("ReplicaSet", "web-1"), status={"conditions": cond}))


def _pdb(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "b", "namespace": "ns", "generation": 3},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }


async def test_max_unavailable_percent_counts_the_deployments_scale(st: store.Store) -> None:
    await _setup(st, ready=3, total=4)
    s = disruption.compute(st, _pdb(maxUnavailable="50%"), eviction.matches, time.time())
    # expected 4 (the Deployment's replicas), desired 4 - ceil(2) = 2, healthy 3 -> 1 allowed
    assert (s["expectedPods"], s["desiredHealthy"], s["currentHealthy"], s["disruptionsAllowed"]) == (
        4,
        2,
        3,
        1,
    )
    assert s["observedGeneration"] == 3 and s["conditions"][0]["reason"] == "SufficientPods"


async def test_disrupted_pods_are_not_healthy_until_they_expire(st: store.Store) -> None:
    await _setup(st, ready=4, total=4)
    now = time.time()
    pdb = _pdb(minAvailable=3)
    pdb["status"] = {"disruptedPods": {"p0": rfc3339.format(now - 5)}}
    s = disruption.compute(st, pdb, eviction.matches, now)
    assert (s["currentHealthy"], s["disruptionsAllowed"], s["disruptedPods"]) == (
        3,
        0,
        {"p0": rfc3339.format(now - 5)},
    )
    late = disruption.compute(st, pdb, eviction.matches, now + disruption.DELETION_TIMEOUT)
    assert (late["currentHealthy"], late["disruptionsAllowed"]) == (4, 1) and "disruptedPods" not in late


async def test_a_missing_controller_fails_safe(st: store.Store) -> None:
    await st.create("pods", _obj("Pod", "orphan", ("ReplicaSet", "gone")))
    s = disruption.compute(st, _pdb(minAvailable="50%"), eviction.matches, time.time())
    assert s["disruptionsAllowed"] == 0 and s["conditions"][0]["reason"] == "SyncFailed"
    assert "found no controller ReplicaSet 'gone'" in s["conditions"][0]["message"]
