"""The scale subresource through the real kubectl (`kubectl scale`), its RBAC, and its Scale object;
server-side printing for kinds without specific columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import clusters, rawhttp
from tests.support.clusters import kubectl

TEMPLATE = {
    "metadata": {"labels": {"app": "s"}},
    "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
}


def workload(kind: str, ns: str, replicas: int = 1) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "s"}},
        "template": TEMPLATE,
    }
    if kind == "StatefulSet":
        spec["serviceName"] = "s"
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web", "namespace": ns}, "spec": spec}


def apply(kubeconfig_path: Path, *objs: dict[str, Any]) -> None:
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=yaml.safe_dump_all(objs))


@pytest.fixture
def api(cluster: clusters.ThreadedCluster) -> rawhttp.Api:
    return rawhttp.for_cluster(cluster.cluster)


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet"])
def test_kubectl_scale_changes_replicas(kubeconfig_path: Path, ns: str, kind: str) -> None:
    apply(kubeconfig_path, workload(kind, ns))
    res = kind.lower()
    out = kubectl(kubeconfig_path, "scale", res, "web", "-n", ns, "--replicas=3")
    assert out.stdout.strip() == f"{res}.apps/web scaled"
    got = kubectl(kubeconfig_path, "get", res, "web", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout
    assert got == "3"
    kubectl(kubeconfig_path, "scale", res, "web", "-n", ns, "--replicas=0")
    got = kubectl(kubeconfig_path, "get", res, "web", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout
    assert got == "0"


def test_kubectl_get_deployment_shows_the_new_scale(kubeconfig_path: Path, ns: str) -> None:
    apply(kubeconfig_path, workload("Deployment", ns))
    kubectl(kubeconfig_path, "scale", "deployment", "web", "-n", ns, "--replicas=4")
    lines = kubectl(kubeconfig_path, "get", "deployment", "web", "-n", ns).stdout.splitlines()
    assert lines[0].split()[:2] == ["NAME", "READY"]
    assert lines[1].split()[:2] == ["web", "0/4"]
    # with a precondition kubectl reads the Scale first
    kubectl(kubeconfig_path, "scale", "deployment", "web", "-n", ns, "--current-replicas=4", "--replicas=2")
    failed = kubectl(
        kubeconfig_path,
        "scale",
        "deployment",
        "web",
        "-n",
        ns,
        "--current-replicas=4",
        "--replicas=1",
        check=False,
    )
    assert failed.returncode == 1 and failed.stderr.strip() == "error: Expected replicas to be 4, was 2"


def test_scale_object_validation_and_preconditions(api: rawhttp.Api, kubeconfig_path: Path, ns: str) -> None:
    apply(kubeconfig_path, workload("Deployment", ns, replicas=2))
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale"
    scale = api.get(path).json()
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["spec"] == {"replicas": 2} and scale["status"]["selector"] == "app=s"
    bad = api.request("PUT", path, dict(scale, spec={"replicas": -1}))
    assert bad.status == 422 and bad.json()["details"]["causes"][0]["field"] == "spec.replicas"
    assert bad.json()["message"] == (
        'Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0"
    )
    ok = api.request("PUT", path, dict(scale, spec={"replicas": 5}))
    assert ok.status == 200 and ok.json()["spec"] == {"replicas": 5}
    stale = api.request("PUT", path, dict(scale, spec={"replicas": 6}))  # the old resourceVersion
    assert stale.status == 409 and stale.json()["reason"] == "Conflict"
    deployment = api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").json()
    assert deployment["spec"]["replicas"] == 5 and deployment["metadata"]["generation"] == 2


def test_scale_needs_rbac_on_the_subresource(kubeconfig_path: Path, ns: str) -> None:
    apply(
        kubeconfig_path,
        workload("Deployment", ns),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": ns}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": ns},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": ns}],
        },
    )
    token = kubectl(kubeconfig_path, "create", "token", "app", "-n", ns).stdout.strip()
    user = f"system:serviceaccount:{ns}:app"
    can_i = ("auth", "can-i", "patch", "deployments", "--subresource=scale", "-n", ns, "--token", token)
    assert kubectl(kubeconfig_path, *can_i, check=False).stdout.strip() == "no"
    out = kubectl(
        kubeconfig_path, "scale", "deployment", "web", "-n", ns, "--replicas=3", "--token", token, check=False
    )
    assert out.returncode == 1
    assert (
        f'deployments.apps "web" is forbidden: User "{user}" cannot patch resource "deployments/scale" '
        f'in API group "apps" in the namespace "{ns}"'
    ) in out.stderr
    got = kubectl(
        kubeconfig_path, "get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}"
    ).stdout
    assert got == "1"
    apply(
        kubeconfig_path,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": ns},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
                {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]},
            ],
        },
    )
    assert kubectl(kubeconfig_path, *can_i).stdout.strip() == "yes"
    kubectl(kubeconfig_path, "scale", "deployment", "web", "-n", ns, "--replicas=3", "--token", token)
    got = kubectl(
        kubeconfig_path, "get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}"
    ).stdout
    assert got == "3"


def test_kind_without_specific_columns_prints_name_and_age(kubeconfig_path: Path, ns: str) -> None:
    apply(
        kubeconfig_path,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "lock", "namespace": ns},
        },
    )
    lines = kubectl(kubeconfig_path, "get", "leases", "-n", ns).stdout.splitlines()
    assert lines[0].split() == ["NAME", "AGE"]
    assert lines[1].split()[0] == "lock" and lines[1].split()[1].endswith("s")
