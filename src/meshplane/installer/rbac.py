"""Service accounts and RBAC: istiod's own (what `meshplane discovery` calls) and the reader's (SPEC §1)."""

from __future__ import annotations

from typing import Any

READER_SA = "istio-reader-service-account"
ISTIO_GROUPS = [
    "config.istio.io",
    "security.istio.io",
    "networking.istio.io",
    "authentication.istio.io",
    "rbac.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
]
READ = ["get", "list", "watch"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def reader_rules(remote: bool) -> list[dict[str, Any]]:
    """Istio's reader ClusterRole; `remote` adds the write rules a managing control plane needs there."""
    rules = [
        _rule(ISTIO_GROUPS, ["*"], READ),
        _rule(
            [""],
            [
                "endpoints",
                "pods",
                "services",
                "nodes",
                "replicationcontrollers",
                "namespaces",
                "secrets",
                "configmaps",
            ],
            READ,
        ),
        _rule(["networking.istio.io"], ["workloadentries"], READ),
        _rule(["networking.x-k8s.io", "gateway.networking.k8s.io"], ["gateways"], READ),
        _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], READ),
        _rule(["discovery.k8s.io"], ["endpointslices"], READ),
        _rule(["multicluster.x-k8s.io"], ["serviceexports"], [*READ, "create", "delete"]),
        _rule(["multicluster.x-k8s.io"], ["serviceimports"], READ),
        _rule(["apps"], ["replicasets"], READ),
        _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        _rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
    ]
    if remote:
        rules += [
            _rule([""], ["configmaps"], ["create", "get", "list", "watch", "update"]),
            _rule(
                ["admissionregistration.k8s.io"],
                ["mutatingwebhookconfigurations"],
                [*READ, "update", "patch"],
            ),
            _rule(["admissionregistration.k8s.io"], ["validatingwebhookconfigurations"], [*READ, "update"]),
        ]
    return rules


def _suffix(revision: str, namespace: str) -> str:
    return f"-{revision}-{namespace}" if revision else f"-{namespace}"


def reader_service_account(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": READER_SA,
            "namespace": namespace,
            "labels": {"app": "istio-reader", "release": "istio"},
        },
    }


def reader_cluster_role(namespace: str, revision: str, remote: bool) -> list[dict[str, Any]]:
    """ClusterRole + ClusterRoleBinding `istio-reader-clusterrole[-REV]-NS` for the reader SA."""
    name = "istio-reader-clusterrole" + _suffix(revision, namespace)
    labels = {"app": "istio-reader", "release": "istio", "app.kubernetes.io/name": "istio-reader"}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": dict(labels)},
            "rules": reader_rules(remote),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(labels)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": READER_SA, "namespace": namespace}],
        },
    ]


def istiod_cluster_rules() -> list[dict[str, Any]]:
    """What `meshplane discovery` needs cluster-wide (watches, TokenReview, webhook patching, root certs)."""
    return [
        _rule(
            ["admissionregistration.k8s.io"], ["mutatingwebhookconfigurations"], [*READ, "update", "patch"]
        ),
        _rule(["admissionregistration.k8s.io"], ["validatingwebhookconfigurations"], [*READ, "update"]),
        _rule(ISTIO_GROUPS, ["*"], READ),
        _rule(ISTIO_GROUPS, ["*/status"], ["update", "patch"]),
        # the validation webhook controller's readiness check: a dry-run create of an invalid Gateway
        _rule(["networking.istio.io"], ["gateways"], ["create"]),
        _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], READ),
        _rule([""], ["pods", "nodes", "services", "namespaces", "endpoints"], READ),
        _rule(["discovery.k8s.io"], ["endpointslices"], READ),
        _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        _rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
        _rule([""], ["configmaps"], ["create", "get", "list", "watch", "update"]),
        _rule([""], ["secrets"], READ),
        _rule([""], ["serviceaccounts"], READ),
        _rule(["apps"], ["replicasets"], READ),
    ]


def istiod_role_rules() -> list[dict[str, Any]]:
    """In its own namespace: the CA secret, remote secrets, leader-election ConfigMaps and Leases."""
    return [
        _rule([""], ["configmaps"], ["create", "get", "list", "watch", "update", "delete"]),
        _rule([""], ["secrets"], ["create", "get", "watch", "list", "update", "delete"]),
        _rule(["coordination.k8s.io"], ["leases"], ["get", "list", "watch", "create", "update", "patch"]),
    ]


def istiod_objects(namespace: str, revision: str, service_account: str) -> list[dict[str, Any]]:
    """istiod's ServiceAccount, ClusterRole/Binding and Role/Binding (Pilot component)."""
    cr_name = "istiod-clusterrole" + _suffix(revision, namespace)
    role_name = f"istiod-{revision}" if revision else "istiod"
    labels = {"app": "istiod", "release": "istio"}
    subject = [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": service_account, "namespace": namespace, "labels": dict(labels)},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": cr_name, "labels": dict(labels)},
            "rules": istiod_cluster_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": cr_name, "labels": dict(labels)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cr_name},
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": role_name, "namespace": namespace, "labels": dict(labels)},
            "rules": istiod_role_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role_name, "namespace": namespace, "labels": dict(labels)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
            "subjects": subject,
        },
    ]
