"""CRUD, list and watch through lightkube, the client the control plane uses."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod, Service

from tests.support import clusters, wait


def cm(
    name: str, ns: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, namespace=ns, labels=labels), data=data or {"k": "v"})


async def test_default_namespaces_and_kubernetes_service(client: Any) -> None:
    names = {n.metadata.name async for n in client.list(Namespace)}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    svc = await client.get(Service, "kubernetes", namespace="default")
    assert svc.spec.clusterIP == "10.96.0.1"
    assert svc.spec.ports[0].port == 443


async def test_create_get_update_delete(client: Any, ns: str) -> None:
    created = await client.create(cm("a", ns))
    meta = created.metadata
    assert meta.uid and meta.resourceVersion and meta.creationTimestamp
    got = await client.get(ConfigMap, "a", namespace=ns)
    assert got.data == {"k": "v"}
    got.data = {"k": "v2"}
    updated = await client.replace(got)
    assert int(updated.metadata.resourceVersion) > int(meta.resourceVersion)
    assert updated.metadata.uid == meta.uid
    await client.delete(ConfigMap, "a", namespace=ns)
    with pytest.raises(ApiError) as e:
        await client.get(ConfigMap, "a", namespace=ns)
    assert e.value.status.code == 404
    assert e.value.status.message == 'configmaps "a" not found'


async def test_create_twice_is_conflict(client: Any, ns: str) -> None:
    await client.create(cm("dup", ns))
    with pytest.raises(ApiError) as e:
        await client.create(cm("dup", ns))
    assert e.value.status.code == 409
    assert e.value.status.reason == "AlreadyExists"


async def test_stale_update_is_409(client: Any, ns: str) -> None:
    first = await client.create(cm("stale", ns))
    fresh = await client.get(ConfigMap, "stale", namespace=ns)
    fresh.data = {"k": "new"}
    await client.replace(fresh)
    first.data = {"k": "old"}
    with pytest.raises(ApiError) as e:
        await client.replace(first)
    assert e.value.status.code == 409
    assert e.value.status.message == (
        'Operation cannot be fulfilled on configmaps "stale": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


async def test_generate_name(client: Any, ns: str) -> None:
    obj = ConfigMap(metadata=ObjectMeta(generateName="gen-", namespace=ns), data={})
    created = await client.create(obj)
    assert created.metadata.name.startswith("gen-") and len(created.metadata.name) == len("gen-") + 5


async def test_missing_namespace_is_404(client: Any) -> None:
    with pytest.raises(ApiError) as e:
        await client.create(cm("x", "does-not-exist"))
    assert e.value.status.code == 404
    assert e.value.status.message == 'namespaces "does-not-exist" not found'


async def test_resource_versions_increase_cluster_wide(client: Any, ns: str) -> None:
    rvs = []
    for i in range(5):
        obj = await client.create(cm(f"rv{i}", ns))
        rvs.append(int(obj.metadata.resourceVersion))
    assert rvs == sorted(rvs) and len(set(rvs)) == 5


async def test_list_with_label_selectors(client: Any, ns: str) -> None:
    # every object of the test carries set=t: other objects in the namespace (kube-root-ca.crt) stay out
    await client.create(cm("l1", ns, labels={"set": "t", "app": "a", "tier": "web"}))
    await client.create(cm("l2", ns, labels={"set": "t", "app": "b"}))
    await client.create(cm("l3", ns, labels={"set": "t"}))

    async def names(sel: Any) -> set[str]:
        return {
            o.metadata.name async for o in client.list(ConfigMap, namespace=ns, labels={"set": "t", **sel})
        }

    from lightkube import operators as op

    assert await names({"app": "a"}) == {"l1"}
    assert await names({"app": op.not_equal("a")}) == {"l2", "l3"}
    assert await names({"app": op.in_(["a", "b"])}) == {"l1", "l2"}
    assert await names({"app": op.not_in(["a"])}) == {"l2", "l3"}
    assert await names({"tier": op.exists()}) == {"l1"}
    assert await names({"app": op.not_exists()}) == {"l3"}


async def test_field_selector_on_name(client: Any, ns: str) -> None:
    await client.create(cm("f1", ns))
    await client.create(cm("f2", ns))
    got = [
        o.metadata.name async for o in client.list(ConfigMap, namespace=ns, fields={"metadata.name": "f2"})
    ]
    assert got == ["f2"]


async def test_watch_from_list_rv_sees_changes_in_order(client: Any, ns: str) -> None:
    listing = client.list(ConfigMap, namespace=ns)
    _ = [o async for o in listing]
    rv = listing.resourceVersion
    seen: list[tuple[str, str]] = []

    async def watcher() -> None:
        async for etype, obj in client.watch(ConfigMap, namespace=ns, resource_version=rv):
            seen.append((etype, obj.metadata.name))
            if len(seen) == 3:
                return

    task = asyncio.create_task(watcher())
    await client.create(cm("w", ns))
    await client.patch(ConfigMap, "w", {"data": {"k": "2"}}, namespace=ns)
    await client.delete(ConfigMap, "w", namespace=ns)
    await asyncio.wait_for(task, 10)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_watch_without_rv_starts_with_current_objects(client: Any, ns: str) -> None:
    await client.create(cm("pre", ns, labels={"set": "t"}))
    seen: list[tuple[str, str]] = []

    async def watcher() -> None:
        async for etype, obj in client.watch(ConfigMap, namespace=ns, labels={"set": "t"}):
            seen.append((etype, obj.metadata.name))
            if len(seen) == 2:
                return

    task = asyncio.create_task(watcher())
    await wait.wait_for(lambda: seen, what="synthetic ADDED")
    await client.create(cm("post", ns, labels={"set": "t"}))
    await asyncio.wait_for(task, 10)
    assert seen == [("ADDED", "pre"), ("ADDED", "post")]


async def test_status_subresource_separates_spec_and_status(client: Any, ns: str) -> None:
    pod = Pod.from_dict(
        {
            "metadata": {"name": "p", "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
    )
    await client.create(pod)
    await client.patch(
        Pod.Status, "p", {"status": {"phase": "Running"}, "spec": {"activeDeadlineSeconds": 5}}, namespace=ns
    )
    got = await client.get(Pod, "p", namespace=ns)
    assert got.status.phase == "Running"
    assert got.spec.activeDeadlineSeconds is None
    await client.patch(
        Pod, "p", {"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "y"}}}, namespace=ns
    )
    got = await client.get(Pod, "p", namespace=ns)
    assert got.status.phase == "Running"
    assert got.metadata.labels == {"x": "y"}


async def test_generation_bumps_on_spec_change_only(client: Any, ns: str) -> None:
    dep = Deployment.from_dict(
        {
            "metadata": {"name": "d", "namespace": ns},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
        }
    )
    created = await client.create(dep)
    assert created.metadata.generation == 1
    relabeled = await client.patch(Deployment, "d", {"metadata": {"labels": {"l": "1"}}}, namespace=ns)
    assert relabeled.metadata.generation == 1
    scaled = await client.patch(Deployment, "d", {"spec": {"replicas": 3}}, namespace=ns)
    assert scaled.metadata.generation == 2
    status = await client.patch(Deployment.Status, "d", {"status": {"replicas": 3}}, namespace=ns)
    assert status.metadata.generation == 2 and status.status.replicas == 3


async def test_service_gets_cluster_ip_headless_none(client: Any, ns: str) -> None:
    def svc(name: str, **spec: Any) -> Service:
        return Service.from_dict(
            {"metadata": {"name": name, "namespace": ns}, "spec": {"ports": [{"port": 80}], **spec}}
        )

    a = await client.create(svc("a"))
    b = await client.create(svc("b"))
    h = await client.create(svc("h", clusterIP="None"))
    e = await client.create(
        Service.from_dict(
            {
                "metadata": {"name": "e", "namespace": ns},
                "spec": {"type": "ExternalName", "externalName": "x.example"},
            }
        )
    )
    assert a.spec.clusterIP.startswith("10.96.") and a.spec.clusterIP != b.spec.clusterIP
    assert a.spec.clusterIP != "10.96.0.1"
    assert h.spec.clusterIP == "None"
    assert e.spec.clusterIP is None
    with pytest.raises(ApiError) as err:
        await client.create(svc("c", clusterIP=a.spec.clusterIP))
    assert err.value.status.code == 422
    with pytest.raises(ApiError) as err:
        await client.patch(Service, "a", {"spec": {"clusterIP": "10.96.99.99"}}, namespace=ns)
    assert err.value.status.code == 422 and "may not change once set" in err.value.status.message
    kept = await client.replace(
        Service.from_dict({"metadata": {"name": "a", "namespace": ns}, "spec": {"ports": [{"port": 81}]}})
    )
    assert kept.spec.clusterIP == a.spec.clusterIP  # an update without clusterIP keeps it


async def test_clients_get_status_objects_for_errors(client: Any, ns: str) -> None:
    with pytest.raises(ApiError) as e:
        await client.get(ConfigMap, "nope", namespace=ns)
    st = e.value.status
    assert (st.kind, st.apiVersion, st.status, st.reason, st.code) == (
        "Status",
        "v1",
        "Failure",
        "NotFound",
        404,
    )
    assert st.details.name == "nope" and st.details.kind == "configmaps"


async def test_unauthenticated_is_401(cluster: clusters.ThreadedCluster) -> None:
    cfg = cluster.kubeconfig
    cfg["users"][0]["user"]["token"] = "wrong"
    c = clusters.lightkube_client(cfg)
    try:
        with pytest.raises(ApiError) as e:
            await c.get(Namespace, "default")
        assert e.value.status.code == 401
    finally:
        await c.close()


async def test_every_served_kind_round_trips(client: Any, ns: str) -> None:
    from lightkube.resources import admissionregistration_v1 as adm
    from lightkube.resources import apps_v1, coordination_v1, discovery_v1, rbac_authorization_v1
    from lightkube.resources import core_v1 as core

    sel = {"matchLabels": {"a": "b"}}
    template = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    hook = {
        "name": "h.example.com",
        "clientConfig": {"url": "https://127.0.0.1:1/x"},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    namespaced = [
        (core.Endpoints, {"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}]}]}),
        (core.Secret, {"stringData": {"a": "b"}}),
        (core.ServiceAccount, {}),
        (core.Event, {"involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R", "message": "m"}),
        (discovery_v1.EndpointSlice, {"addressType": "IPv4", "endpoints": [{"addresses": ["127.0.0.1"]}]}),
        (coordination_v1.Lease, {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}),
        (apps_v1.ReplicaSet, {"spec": {"selector": sel, "template": template}}),
        (
            rbac_authorization_v1.Role,
            {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        ),
        (
            rbac_authorization_v1.RoleBinding,
            {
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                "subjects": [{"kind": "User", "name": "u"}],
            },
        ),
    ]
    for res, body in namespaced:
        name = res.__name__.lower()
        obj = res.from_dict({"metadata": {"name": name, "namespace": ns}, **body})
        created = await client.create(obj)
        assert created.metadata.uid, res
        got = await client.get(res, name, namespace=ns)
        assert got.metadata.resourceVersion == created.metadata.resourceVersion
        await client.delete(res, name, namespace=ns)
    suffix = ns
    cluster_scoped = [
        (core.Node, {"spec": {"podCIDR": "10.0.0.0/24"}}),
        (adm.MutatingWebhookConfiguration, {"webhooks": [hook]}),
        (adm.ValidatingWebhookConfiguration, {"webhooks": [hook]}),
        (rbac_authorization_v1.ClusterRole, {"rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]}),
        (
            rbac_authorization_v1.ClusterRoleBinding,
            {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"}},
        ),
    ]
    for res, body in cluster_scoped:
        name = f"{res.__name__.lower()}-{suffix}"
        created = await client.create(res.from_dict({"metadata": {"name": name}, **body}))
        assert created.metadata.uid and created.metadata.namespace is None
        await client.delete(res, name)


async def test_server_side_apply_creates_then_merges(client: Any, ns: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa", "namespace": ns},
        "data": {"a": "1"},
    }
    first = await client.apply(ConfigMap.from_dict(body), field_manager="test")
    assert first.data == {"a": "1"}
    second = await client.apply(ConfigMap.from_dict(dict(body, data={"b": "2"})), field_manager="test")
    assert second.metadata.uid == first.metadata.uid and second.data["b"] == "2"
