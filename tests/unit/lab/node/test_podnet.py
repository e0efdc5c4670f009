"""How a container is started inside its pod's network namespace, and a pod's own hosts file."""

from __future__ import annotations

import pytest

from meshplane.lab import errors
from meshplane.lab.node import dns, podnet

POD = {"metadata": {"name": "p", "namespace": "sample"}, "spec": {"securityContext": {"runAsUser": 1000}}}


def test_root_containers_only_enter_the_namespace() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {}}
    assert podnet.exec_prefix("mp-x-1", pod, {"name": "app"}) == ["ip", "netns", "exec", "mp-x-1"]


def test_the_sidecar_runs_as_its_uid_so_capture_exempts_it() -> None:
    proxy = {"name": "istio-proxy", "securityContext": {"runAsUser": 1337, "runAsGroup": 1337}}
    prefix = podnet.exec_prefix("mp-x-1", POD, proxy)
    assert prefix[:4] == ["ip", "netns", "exec", "mp-x-1"]
    assert prefix[4:8] == ["setpriv", "--clear-groups", "--reuid=1337", "--regid=1337"]
    assert prefix[-1] == "--"
    # the pod's runAsUser applies when the container says nothing
    assert "--reuid=1000" in podnet.exec_prefix("mp-x-1", POD, {"name": "app"})


@pytest.mark.parametrize("value", [-1, "1337", True, 1.5])
def test_a_bad_user_id_is_a_container_config_error(value: object) -> None:
    with pytest.raises(
        errors.ContainerConfigError, match=r"securityContext.runAsUser: .* is not a user/group id"
    ):
        podnet.run_as(POD, {"securityContext": {"runAsUser": value}})


def test_a_pods_hosts_file_has_bare_names_only_for_its_namespace() -> None:
    found = [
        dns.Entry("198.18.11.3", "helloworld", "sample"),
        dns.Entry("198.18.11.2", "istiod", "istio-system"),
    ]
    lines = dict(dns.pod_hosts(found, "sample"))
    assert lines["198.18.11.3"] == [
        "helloworld.sample.svc.cluster.local",
        "helloworld.sample.svc",
        "helloworld.sample",
        "helloworld",
    ]
    assert "istiod" not in lines["198.18.11.2"] and "istiod.istio-system" in lines["198.18.11.2"]
