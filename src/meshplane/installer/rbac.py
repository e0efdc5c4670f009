"""Service accounts and RBAC: istiod's own (what `meshplane discovery` calls) and the reader's (SPEC §1),
rendered from the list of API calls the control plane makes (kube/apicalls.py)."""

from __future__ import annotations

from typing import Any

from meshplane.kube import apicalls

READER_SA = "istio-reader-service-account"


def reader_rules(remote: bool) -> list[dict[str, Any]]:
    """The reader ClusterRole: what the control plane calls in a cluster it reads through a remote
    secret; `remote` (the remote profile) adds what it calls in a cluster it manages there.

    Rendered from kube/apicalls.py; it grants less than Istio's reader role (docs/architecture.md,
    "RBAC"). A ClusterRole: the system-namespace calls (the leader lock) are granted cluster-wide,
    as the reader has no Role."""
    clusters = [apicalls.Cluster.REMOTE, apicalls.Cluster.MANAGED] if remote else [apicalls.Cluster.REMOTE]
    return apicalls.rules(apicalls.grants(apicalls.CALLS, clusters))


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


def _istiod_grants() -> tuple[set[apicalls.Grant], set[apicalls.Grant]]:
    """istiod's calls in its own cluster: (cluster-wide, system namespace only)."""
    calls = apicalls.grants(apicalls.CALLS, [apicalls.Cluster.CONFIG, apicalls.Cluster.MANAGED])
    wide = {g for g in calls if g.scope is not apicalls.Scope.SYSTEM_NAMESPACE}
    covered = {(g.group, g.resource, g.verb) for g in wide}
    local = {g for g in calls if g.scope is apicalls.Scope.SYSTEM_NAMESPACE}
    return wide, {g for g in local if (g.group, g.resource, g.verb) not in covered}


def istiod_cluster_rules() -> list[dict[str, Any]]:
    """What `meshplane discovery` calls cluster-wide or in every namespace (kube/apicalls.py)."""
    return apicalls.rules(_istiod_grants()[0])


def istiod_role_rules() -> list[dict[str, Any]]:
    """What it calls only in its own namespace and the ClusterRole does not already grant: the CA
    secrets, remote secrets, the leader-election lock (kube/apicalls.py)."""
    return apicalls.rules(_istiod_grants()[1])


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
