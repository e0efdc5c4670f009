"""RBAC decisions over stored Roles and bindings, and Kubernetes' denial wording."""

from __future__ import annotations

import pytest

from meshplane.devcluster import seams
from meshplane.devcluster.auth import rbac
from meshplane.devcluster.storage import persistence, store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime.jsonobj import Obj

SA_USER = seams.UserInfo(
    "system:serviceaccount:ns:sa",
    "u",
    ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"),
)


@pytest.fixture
async def st() -> store.Store:
    s = store.Store(persistence.MemoryPersistence(), clock_mod.SystemClock())
    await s.open()
    for key, obj in rbac.bootstrap_policy():
        await s.create(key, obj)
    return s


def attrs(
    verb: str,
    resource: str,
    ns: str = "ns",
    name: str = "",
    group: str = "",
    sub: str = "",
    user: seams.UserInfo = SA_USER,
) -> seams.RequestAttributes:
    return seams.RequestAttributes(user, verb, group, "v1", resource, sub, ns, name)


def role(kind: str, name: str, rules: list[Obj], ns: str = "") -> Obj:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules}


def binding(kind: str, name: str, ref_kind: str, ref: str, subjects: list[Obj], ns: str = "") -> Obj:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref},
        "subjects": subjects,
    }


SA_SUBJECT = {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}


async def test_denial_without_bindings(st: store.Store) -> None:
    a = rbac.Authorizer(st)
    assert await a.authorize(attrs("list", "pods")) == (False, "")
    assert await a.authorize(attrs("list", "clusterroles", ns="", group="rbac.authorization.k8s.io")) == (
        False,
        "",
    )


async def test_role_and_rolebinding(st: store.Store) -> None:
    a = rbac.Authorizer(st)
    await st.create(
        "rbac.authorization.k8s.io/roles",
        role("Role", "reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}], "ns"),
    )
    await st.create(
        "rbac.authorization.k8s.io/rolebindings",
        binding("RoleBinding", "rb", "Role", "reader", [SA_SUBJECT], "ns"),
    )
    assert (await a.authorize(attrs("list", "pods")))[0]
    assert not (await a.authorize(attrs("delete", "pods", name="p")))[0]
    assert not (await a.authorize(attrs("list", "pods", ns="other")))[0]
    assert not (await a.authorize(attrs("list", "pods", ns="")))[0]  # cluster-wide needs a ClusterRoleBinding
    assert not (await a.authorize(attrs("get", "pods", name="p", sub="log")))[0]


async def test_clusterrole_via_rolebinding_is_namespaced(st: store.Store) -> None:
    a = rbac.Authorizer(st)
    await st.create(
        "rbac.authorization.k8s.io/clusterroles",
        role("ClusterRole", "secret-reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]),
    )
    # subject namespace defaults to the binding's namespace
    await st.create(
        "rbac.authorization.k8s.io/rolebindings",
        binding(
            "RoleBinding",
            "rb",
            "ClusterRole",
            "secret-reader",
            [{"kind": "ServiceAccount", "name": "sa"}],
            "ns",
        ),
    )
    assert (await a.authorize(attrs("get", "secrets", name="s")))[0]
    assert not (await a.authorize(attrs("get", "secrets", ns="other", name="s")))[0]


async def test_resource_names_subresources_wildcards(st: store.Store) -> None:
    a = rbac.Authorizer(st)
    rules = [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["allowed"],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["patch"]},
        {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]},
        {"apiGroups": ["networking.istio.io"], "resources": ["*"], "verbs": ["list"]},
    ]
    await st.create("rbac.authorization.k8s.io/clusterroles", role("ClusterRole", "mixed", rules))
    await st.create(
        "rbac.authorization.k8s.io/clusterrolebindings",
        binding("ClusterRoleBinding", "crb", "ClusterRole", "mixed", [SA_SUBJECT]),
    )
    assert (await a.authorize(attrs("get", "configmaps", name="allowed")))[0]
    assert not (await a.authorize(attrs("get", "configmaps", name="other")))[0]
    assert not (await a.authorize(attrs("list", "configmaps")))[0]  # resourceNames never allow list
    assert (await a.authorize(attrs("patch", "deployments", name="d", group="apps", sub="status")))[0]
    assert not (await a.authorize(attrs("patch", "deployments", name="d", group="apps")))[0]
    assert (await a.authorize(attrs("get", "replicasets", name="r", group="apps", sub="scale")))[0]
    assert (await a.authorize(attrs("list", "gateways", ns="", group="networking.istio.io")))[0]
    # "*" covers subresources too (rbac's ResourceMatches)
    assert (await a.authorize(attrs("list", "gateways", group="networking.istio.io", sub="status")))[0]


async def test_subject_kinds(st: store.Store) -> None:
    a = rbac.Authorizer(st)
    rules = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    await st.create("rbac.authorization.k8s.io/clusterroles", role("ClusterRole", "nodes", rules))
    alice = seams.UserInfo("alice", groups=("devs", "system:authenticated"))
    await st.create(
        "rbac.authorization.k8s.io/clusterrolebindings",
        binding(
            "ClusterRoleBinding",
            "by-group",
            "ClusterRole",
            "nodes",
            [{"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}],
        ),
    )
    assert (await a.authorize(attrs("list", "nodes", ns="", user=alice)))[0]
    assert not (await a.authorize(attrs("list", "nodes", ns="")))[0]
    await st.create(
        "rbac.authorization.k8s.io/clusterrolebindings",
        binding(
            "ClusterRoleBinding",
            "all-sa",
            "ClusterRole",
            "nodes",
            [{"kind": "Group", "name": "system:serviceaccounts:ns"}],
        ),
    )
    assert (await a.authorize(attrs("list", "nodes", ns="")))[0]
    bob = seams.UserInfo("bob", groups=("system:authenticated",))
    assert not (await a.authorize(attrs("list", "nodes", ns="", user=bob)))[0]
    await st.create(
        "rbac.authorization.k8s.io/clusterrolebindings",
        binding("ClusterRoleBinding", "bob", "ClusterRole", "nodes", [{"kind": "User", "name": "bob"}]),
    )
    assert (await a.authorize(attrs("list", "nodes", ns="", user=bob)))[0]


async def test_masters_and_default_grants(st: store.Store) -> None:
    a = rbac.Authorizer(st)
    admin = seams.UserInfo("kubernetes-admin", groups=("system:masters", "system:authenticated"))
    assert (await a.authorize(attrs("delete", "namespaces", ns="", name="x", user=admin)))[0]

    def path(p: str, verb: str = "get") -> seams.RequestAttributes:
        return seams.RequestAttributes(SA_USER, verb, "", "", "", path=p, resource_request=False)

    for p in (
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/version",
        "/openapi/v3",
        "/openapi/v3/api/v1",
        "/healthz",
    ):
        assert (await a.authorize(path(p)))[0], p
    assert not (await a.authorize(path("/metrics")))[0]
    assert not (await a.authorize(path("/api", "post")))[0]
    review = attrs("create", "selfsubjectreviews", ns="", group="authentication.k8s.io")
    assert (await a.authorize(review))[0]


async def test_missing_role_reason(st: store.Store) -> None:
    a = rbac.Authorizer(st)
    await st.create(
        "rbac.authorization.k8s.io/rolebindings",
        binding("RoleBinding", "rb", "Role", "gone", [SA_SUBJECT], "ns"),
    )
    ok, why = await a.authorize(attrs("get", "pods", name="p"))
    assert not ok
    assert why == 'RBAC: role.rbac.authorization.k8s.io "gone" not found'
    await st.create(
        "rbac.authorization.k8s.io/clusterrolebindings",
        binding("ClusterRoleBinding", "crb", "ClusterRole", "gone-too", [SA_SUBJECT]),
    )
    ok, why = await a.authorize(attrs("get", "pods", name="p"))
    assert why == (
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone-too" not found, '
        'role.rbac.authorization.k8s.io "gone" not found]'
    )


async def test_index_follows_binding_changes(st: store.Store) -> None:
    a = rbac.Authorizer(st)
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    await st.create("rbac.authorization.k8s.io/roles", role("Role", "r", rules, "ns"))
    rb = binding("RoleBinding", "rb", "Role", "r", [SA_SUBJECT], "ns")
    await st.create("rbac.authorization.k8s.io/rolebindings", rb)
    assert (await a.authorize(attrs("list", "pods")))[0]
    rb["subjects"] = [{"kind": "User", "name": "someone-else"}]
    await st.update("rbac.authorization.k8s.io/rolebindings", rb)
    assert not (await a.authorize(attrs("list", "pods")))[0]
    rb["subjects"] = [SA_SUBJECT]
    await st.update("rbac.authorization.k8s.io/rolebindings", rb)
    assert (await a.authorize(attrs("list", "pods")))[0]
    await st.delete("rbac.authorization.k8s.io/rolebindings", "ns", "rb")
    assert not (await a.authorize(attrs("list", "pods")))[0]
    # a binding in another namespace with the same name does not leak across
    await st.create(
        "rbac.authorization.k8s.io/rolebindings", binding("RoleBinding", "rb", "Role", "r", [SA_SUBJECT], "x")
    )
    assert not (await a.authorize(attrs("list", "pods")))[0]
