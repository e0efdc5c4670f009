from __future__ import annotations

import pytest

from meshplane.devcluster import errors
from meshplane.devcluster.schema import defaults


def test_service_ips_allocate_within_the_range() -> None:
    ips = defaults.ServiceIPs("10.200.0.0/29")
    assert ips.api_ip == "10.200.0.1"
    used = [ips.api_ip]
    got = []
    for _ in range(5):
        ip = ips.allocate(used)
        got.append(ip)
        used.append(ip)
        ips.release(ip)
    assert got == ["10.200.0.2", "10.200.0.3", "10.200.0.4", "10.200.0.5", "10.200.0.6"]
    with pytest.raises(errors.ApiError):
        ips.allocate(used)  # the /29 is full


def test_service_ips_reserve_checks() -> None:
    ips = defaults.ServiceIPs("10.96.0.0/16")
    ips.reserve("10.96.5.5", [], "a")
    with pytest.raises(errors.ApiError) as e:
        ips.reserve("10.96.5.5", [], "b")
    assert e.value.code == 422 and "already allocated" in e.value.message
    with pytest.raises(errors.ApiError) as e:
        ips.reserve("192.168.0.1", [], "c")
    assert "not in the valid range" in e.value.message
    with pytest.raises(ValueError):
        defaults.ServiceIPs("nonsense")


def test_pod_and_service_defaults() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]},
    }
    defaults.apply("pods", "", pod, None, 0.0)
    c = pod["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "Always" and c["ports"][0]["protocol"] == "TCP"
    assert pod["status"]["phase"] == "Pending" and pod["spec"]["terminationGracePeriodSeconds"] == 30
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    old = {"spec": {"clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"]}}
    defaults.apply("services", "", svc, old, 0.0)
    assert svc["spec"]["ports"][0]["targetPort"] == 80 and svc["spec"]["clusterIP"] == "10.96.0.9"
