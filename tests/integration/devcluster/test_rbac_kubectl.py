"""RBAC as a service-account user sees it, through the real kubectl and through lightkube."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Pod, ServiceAccount

from tests.support import clusters
from tests.support.clusters import kubectl


def apply(kubeconfig_path: Path, *objs: dict[str, Any]) -> None:
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=yaml.safe_dump_all(objs))


def role(kind: str, name: str, rules: list[dict[str, Any]], ns: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules}


def binding(
    kind: str, name: str, ref_kind: str, ref: str, sa_ns: str, ns: str | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": sa_ns}],
    }


def issue(cluster: clusters.ThreadedCluster, ns: str, sa: str, audiences: tuple[str, ...] = ()) -> str:
    """A TokenRequest token issued in-process, on the cluster's own loop thread."""
    return cluster.run(lambda: cluster.cluster.security.issue_token(ns, sa, audiences))


@pytest.fixture
def sa_token(cluster: clusters.ThreadedCluster, kubeconfig_path: Path, ns: str) -> str:
    apply(
        kubeconfig_path,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": ns}},
    )
    return kubectl(kubeconfig_path, "create", "token", "app", "-n", ns).stdout.strip()


def test_kubectl_forbidden_then_allowed_by_role(kubeconfig_path: Path, ns: str, sa_token: str) -> None:
    user = f"system:serviceaccount:{ns}:app"
    out = kubectl(kubeconfig_path, "get", "pods", "-n", ns, "--token", sa_token, check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f'Error from server (Forbidden): pods is forbidden: User "{user}" cannot list resource "pods" '
        f'in API group "" in the namespace "{ns}"'
    )
    out = kubectl(kubeconfig_path, "get", "nodes", "--token", sa_token, check=False)
    assert out.stderr.strip() == (
        f'Error from server (Forbidden): nodes is forbidden: User "{user}" cannot list resource "nodes" '
        f'in API group "" at the cluster scope'
    )
    apply(
        kubeconfig_path,
        role(
            "Role",
            "pod-reader",
            [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            ns,
        ),
        binding("RoleBinding", "app-reads-pods", "Role", "pod-reader", ns, ns),
    )
    out = kubectl(kubeconfig_path, "get", "pods", "-n", ns, "--token", sa_token)
    assert "No resources found" in out.stderr
    # a verb the role lacks, and another namespace, stay forbidden
    out = kubectl(kubeconfig_path, "delete", "pod", "x", "-n", ns, "--token", sa_token, check=False)
    assert f'pods "x" is forbidden: User "{user}" cannot delete resource "pods"' in out.stderr
    out = kubectl(kubeconfig_path, "get", "pods", "-n", "default", "--token", sa_token, check=False)
    assert "Forbidden" in out.stderr
    # discovery and version need no grant (system:discovery, system:public-info-viewer)
    assert "pods" in kubectl(kubeconfig_path, "api-resources", "--token", sa_token).stdout
    assert "Server Version" in kubectl(kubeconfig_path, "version", "--token", sa_token).stdout


def test_clusterrole_through_rolebinding_and_resource_names(
    kubeconfig_path: Path, ns: str, sa_token: str
) -> None:
    user = f"system:serviceaccount:{ns}:app"
    apply(
        kubeconfig_path,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "allowed", "namespace": ns},
            "data": {"a": "1"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "other", "namespace": ns},
            "data": {"a": "2"},
        },
        role(
            "ClusterRole",
            f"{ns}-one-configmap",
            [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": ["allowed"],
                    "verbs": ["get"],
                }
            ],
        ),
        binding("RoleBinding", "one-configmap", "ClusterRole", f"{ns}-one-configmap", ns, ns),
    )
    out = kubectl(kubeconfig_path, "get", "configmap", "allowed", "-n", ns, "--token", sa_token, "-o", "json")
    assert json.loads(out.stdout)["data"] == {"a": "1"}
    out = kubectl(kubeconfig_path, "get", "configmap", "other", "-n", ns, "--token", sa_token, check=False)
    assert out.stderr.strip() == (
        f'Error from server (Forbidden): configmaps "other" is forbidden: User "{user}" cannot get resource '
        f'"configmaps" in API group "" in the namespace "{ns}"'
    )
    # the ClusterRole granted through a RoleBinding applies in that namespace only
    out = kubectl(
        kubeconfig_path,
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "default",
        "--token",
        sa_token,
        check=False,
    )
    assert "Forbidden" in out.stderr


async def test_lightkube_as_service_account(cluster: clusters.ThreadedCluster, client: Any, ns: str) -> None:
    await client.create(ServiceAccount(metadata=ObjectMeta(name="app", namespace=ns)))
    await client.create(
        Pod(
            metadata=ObjectMeta(name="p", namespace=ns),
            spec=PodSpec(serviceAccountName="app", containers=[Container(name="c", image="i")]),
        )
    )
    token = issue(cluster, ns, "app")
    cfg = cluster.kubeconfig
    cfg["users"][0]["user"]["token"] = token
    sa_client = clusters.lightkube_client(cfg)
    user = f"system:serviceaccount:{ns}:app"
    try:
        with pytest.raises(ApiError) as e:
            await sa_client.get(Pod, "p", namespace=ns)
        assert e.value.status.code == 403 and e.value.status.reason == "Forbidden"
        assert e.value.status.message == (
            f'pods "p" is forbidden: User "{user}" cannot get resource "pods" in API group "" '
            f'in the namespace "{ns}"'
        )
        await client.create(
            _cr(f"{ns}-status", [{"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get"]}])
        )
        await client.create(_rb(ns, f"{ns}-status"))
        status = await sa_client.get(Pod.Status, "p", namespace=ns)
        assert status.metadata.name == "p"
        with pytest.raises(ApiError) as e:  # the status subresource grant does not cover the pod itself
            await sa_client.get(Pod, "p", namespace=ns)
        assert e.value.status.code == 403
        with pytest.raises(ApiError) as e:
            await sa_client.create(ConfigMap(metadata=ObjectMeta(name="c", namespace=ns), data={}))
        assert e.value.status.message == (
            f'configmaps is forbidden: User "{user}" cannot create resource "configmaps" in API group "" '
            f'in the namespace "{ns}"'
        )
    finally:
        await sa_client.close()


async def test_token_for_other_audience_is_unauthorized(
    cluster: clusters.ThreadedCluster, client: Any, ns: str
) -> None:
    await client.create(ServiceAccount(metadata=ObjectMeta(name="app", namespace=ns)))
    cfg = cluster.kubeconfig
    cfg["users"][0]["user"]["token"] = issue(cluster, ns, "app", ("istio-ca",))
    sa_client = clusters.lightkube_client(cfg)
    try:
        with pytest.raises(ApiError) as e:
            await sa_client.get(ServiceAccount, "app", namespace=ns)
        assert e.value.status.code == 401
    finally:
        await sa_client.close()


def _cr(name: str, rules: list[dict[str, Any]]) -> Any:
    from lightkube.resources.rbac_authorization_v1 import ClusterRole

    return ClusterRole.from_dict(role("ClusterRole", name, rules))  # type: ignore[attr-defined]


def _rb(ns: str, cluster_role: str) -> Any:
    from lightkube.resources.rbac_authorization_v1 import RoleBinding

    return RoleBinding.from_dict(binding("RoleBinding", "status", "ClusterRole", cluster_role, ns, ns))  # type: ignore[attr-defined]


async def test_access_reviews(cluster: clusters.ThreadedCluster, client: Any, ns: str) -> None:
    from lightkube.models.authorization_v1 import (
        NonResourceAttributes,
        ResourceAttributes,
        SelfSubjectAccessReviewSpec,
        SubjectAccessReviewSpec,
    )
    from lightkube.resources.authentication_v1 import SelfSubjectReview
    from lightkube.resources.authorization_v1 import SelfSubjectAccessReview, SubjectAccessReview

    await client.create(ServiceAccount(metadata=ObjectMeta(name="app", namespace=ns)))
    cfg = cluster.kubeconfig
    cfg["users"][0]["user"]["token"] = issue(cluster, ns, "app")
    sa_client = clusters.lightkube_client(cfg)
    user = f"system:serviceaccount:{ns}:app"
    list_pods = ResourceAttributes(namespace=ns, verb="list", resource="pods")
    try:
        me = await sa_client.create(SelfSubjectReview())
        assert me.status.userInfo.username == user
        assert me.status.userInfo.groups == [
            "system:serviceaccounts",
            f"system:serviceaccounts:{ns}",
            "system:authenticated",
        ]

        async def can_i(attrs: Any) -> bool:
            spec = SelfSubjectAccessReviewSpec(**attrs)
            review = await sa_client.create(SelfSubjectAccessReview(spec=spec))
            return bool(review.status.allowed)

        assert not await can_i({"resourceAttributes": list_pods})
        assert await can_i({"nonResourceAttributes": NonResourceAttributes(path="/api", verb="get")})
        await client.create(
            _cr(f"{ns}-lister", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
        )
        await client.create(_rb(ns, f"{ns}-lister"))
        assert await can_i({"resourceAttributes": list_pods})
        # asked by the admin about someone else
        sar = await client.create(
            SubjectAccessReview(
                spec=SubjectAccessReviewSpec(
                    user=user, groups=["system:serviceaccounts"], resourceAttributes=list_pods
                )
            )
        )
        assert sar.status.allowed is True
        sar = await client.create(
            SubjectAccessReview(spec=SubjectAccessReviewSpec(user="nobody", resourceAttributes=list_pods))
        )
        assert not sar.status.allowed
        # the service account itself may not ask about others
        with pytest.raises(ApiError) as e:
            await sa_client.create(
                SubjectAccessReview(spec=SubjectAccessReviewSpec(user="nobody", resourceAttributes=list_pods))
            )
        assert e.value.status.code == 403
    finally:
        await sa_client.close()


def test_impersonation_is_refused_not_ignored(kubeconfig_path: Path, ns: str) -> None:
    """`kubectl --as` must not run the request as the caller (the admin here): the dev cluster does
    not implement impersonation, so it refuses with the header named."""
    out = kubectl(kubeconfig_path, "get", "pods", "-n", ns, "--as", "someone", check=False)
    assert out.returncode == 1
    assert "does not support impersonation (Impersonate-User)" in out.stderr, out.stderr
    plain = kubectl(kubeconfig_path, "get", "pods", "-n", ns, check=False)
    assert plain.returncode == 0, plain.stderr
