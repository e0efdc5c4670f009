"""lab.endpoints: which Pods become which endpoints, with Kubernetes' conditions and ports."""

from __future__ import annotations

from typing import Any

from meshplane.lab.controllers import endpointslices


def pod(
    name: str,
    ip: str,
    ready: bool = True,
    deleting: bool = False,
    port_name: str = "http",
    port: int = 5000,
    **labels: str,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "labels": labels or {"app": "web"},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": port}]}],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def service(**spec: Any) -> dict[str, Any]:
    base = {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "svc"}, "spec": {**base, **spec}}


def test_conditions_target_ref_and_named_target_port() -> None:
    pods = [
        pod("a", "127.0.1.2"),
        pod("b", "127.0.1.3", ready=False),
        pod("c", "127.0.1.4", deleting=True),
        pod("other", "127.0.1.5", app="other"),
        {**pod("done", "127.0.1.6"), "status": {"phase": "Succeeded", "podIP": "127.0.1.6"}},
        {**pod("noip", ""), "status": {"phase": "Pending"}},
    ]
    ((key, body),) = endpointslices.desired(service(), pods, "zone1")
    assert key == (("http", 5000, "TCP"),)
    assert body["ports"] == [{"name": "http", "port": 5000, "protocol": "TCP"}]
    got = {e["targetRef"]["name"]: e["conditions"] for e in body["endpoints"]}
    assert got == {
        "a": {"ready": True, "serving": True, "terminating": False},
        "b": {"ready": False, "serving": False, "terminating": False},
        "c": {"ready": False, "serving": True, "terminating": True},
    }
    a = body["endpoints"][0]
    assert a == {
        "addresses": ["127.0.1.2"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"},
        "nodeName": "n1",
        "zone": "zone1",
    }


def test_pods_with_different_port_numbers_get_separate_slices() -> None:
    out = endpointslices.desired(
        service(), [pod("a", "127.0.1.2", port=5000), pod("b", "127.0.1.3", port=6000)], ""
    )
    assert [k for k, _ in out] == [(("http", 5000, "TCP"),), (("http", 6000, "TCP"),)]


def test_publish_not_ready_and_placeholder() -> None:
    ((_, body),) = endpointslices.desired(
        service(publishNotReadyAddresses=True), [pod("b", "127.0.1.3", ready=False)], ""
    )
    assert body["endpoints"][0]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert endpointslices.desired(service(), [], "") == [
        ((), {"addressType": "IPv4", "endpoints": [], "ports": []})
    ]


def test_only_own_slices_are_managed() -> None:
    svc = service()
    mine = {"metadata": {"ownerReferences": [{"kind": "Service", "uid": "svc", "controller": True}]}}
    hand_made = {"metadata": {"labels": {endpointslices.SERVICE_NAME: "web"}}}
    assert endpointslices.owned_by(mine, svc) and endpointslices.owned_by(mine, None)
    assert not endpointslices.owned_by(hand_made, svc)
    assert not endpointslices.owned_by(mine, {"metadata": {"uid": "another"}})
