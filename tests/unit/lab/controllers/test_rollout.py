"""lab.rollout: the Deployment arithmetic, checked by simulating whole rollouts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshplane.lab.controllers import rollout
from meshplane.runtime import rfc3339


def test_template_hash_is_stable_and_follows_the_template() -> None:
    t = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    h = rollout.template_hash(t)
    assert h == rollout.template_hash({"spec": t["spec"], "metadata": t["metadata"]})
    assert h != rollout.template_hash({**t, "spec": {"containers": [{"name": "c", "image": "i:2"}]}})
    assert h != rollout.template_hash(t, collision_count=1)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "want"),
    [("25%", "25%", 4, (1, 1)), ("25%", "25%", 1, (1, 0)), (0, 0, 3, (0, 1)), ("50%", 2, 5, (3, 2))],
)
def test_surge_and_unavailable(surge: Any, unavailable: Any, replicas: int, want: tuple[int, int]) -> None:
    d = {
        "spec": {
            "replicas": replicas,
            "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
        }
    }
    assert rollout.surge_and_unavailable(d) == want


def simulate(desired: int, surge: int, unavailable: int, old_replicas: int) -> list[dict[str, int]]:
    """Run the rolling update step by step, pods becoming available at once; return each plan."""
    new = rollout.RsView("new", 0, 0, "2")
    old = rollout.RsView("old", old_replicas, old_replicas, "1")
    plans = []
    for _ in range(50):
        plan = rollout.rolling(desired, new, [old], surge, unavailable)
        plans.append(plan)
        total = plan["new"] + plan["old"]
        assert total <= desired + surge
        available = min(plan["new"], new.available) + min(plan["old"], old.available)
        assert available >= min(desired - unavailable, old_replicas)
        new = rollout.RsView("new", plan["new"], plan["new"], "2")
        old = rollout.RsView("old", plan["old"], plan["old"], "1")
        if plan == {"new": desired, "old": 0}:
            return plans
    raise AssertionError(f"rollout did not finish: {plans[-3:]}")


@given(st.integers(1, 8), st.integers(0, 3), st.integers(0, 3))
def test_rolling_update_finishes_within_its_bounds(desired: int, surge: int, unavailable: int) -> None:
    if surge == 0 and unavailable == 0:
        unavailable = 1
    unavailable = min(unavailable, desired)
    simulate(desired, surge, unavailable, desired)


def test_recreate_waits_for_old_pods() -> None:
    new, old = rollout.RsView("new", 0, 0, "2"), rollout.RsView("old", 2, 2, "1")
    assert rollout.recreate(2, new, [old], old_pods_running=2) == {"old": 0, "new": 0}
    assert rollout.recreate(2, new, [old], old_pods_running=0) == {"old": 0, "new": 2}


def rs(name: str, replicas: int, ready: int, available: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available},
    }


def test_deployment_status_and_conditions() -> None:
    d: dict[str, Any] = {"metadata": {"generation": 3}, "spec": {"replicas": 2}}
    progressing = rollout.deployment_status(d, "d-new", [rs("d-new", 1, 0, 0), rs("d-old", 2, 2, 2)], "T1")
    assert progressing["updatedReplicas"] == 1 and progressing["replicas"] == 3
    conds = {c["type"]: c for c in progressing["conditions"]}
    assert conds["Available"]["status"] == "True"  # 2 available >= 2 - 0 (25% of 2 rounds down)
    assert conds["Progressing"]["reason"] == "ReplicaSetUpdated"
    d["status"] = progressing
    done = rollout.deployment_status(d, "d-new", [rs("d-new", 2, 2, 2)], "T2")
    conds = {c["type"]: c for c in done["conditions"]}
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conds["Available"]["lastTransitionTime"] == "T1"  # unchanged status keeps its time
    assert done["observedGeneration"] == 3 and "unavailableReplicas" not in done
    down = rollout.deployment_status(d, "d-new", [rs("d-new", 2, 0, 0)], "T3")
    assert {c["type"]: c["status"] for c in down["conditions"]}["Available"] == "False"
    assert down["unavailableReplicas"] == 2


def pod(name: str, created: str, ready: bool, node: str = "n", phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created, "labels": {"app": "a"}},
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    }


def test_scale_down_order_and_replicaset_status() -> None:
    pods = [
        pod("old-ready", "2026-01-01T00:00:00Z", True),
        pod("new-ready", "2026-01-01T00:01:00Z", True),
        pod("not-ready", "2026-01-01T00:00:30Z", False),
        pod("unscheduled", "2026-01-01T00:00:10Z", False, node="", phase="Pending"),
    ]
    assert [p["metadata"]["name"] for p in rollout.deletion_order(pods)] == [
        "unscheduled",
        "not-ready",
        "new-ready",
        "old-ready",
    ]
    r = {
        "metadata": {"generation": 2},
        "spec": {"minReadySeconds": 30, "template": {"metadata": {"labels": {"app": "a"}}}},
    }
    status = rollout.replicaset_status(r, pods, wall=rfc3339.parse("2026-01-01T00:00:20Z"))
    assert status == {
        "replicas": 4,
        "fullyLabeledReplicas": 4,
        "readyReplicas": 2,
        "availableReplicas": 0,  # ready for 20 s < minReadySeconds 30
        "observedGeneration": 2,
    }
