"""Deletion semantics: finalizers, graceful pod deletion, ownerReference GC, namespace deletion."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod
from lightkube.types import CascadeType

from tests.support import clusters, rawhttp, wait


def cm(
    name: str,
    ns: str,
    *,
    owner: Any = None,
    finalizers: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> ConfigMap:
    refs = None
    if owner is not None:
        refs = [
            OwnerReference(
                apiVersion="v1", kind="ConfigMap", name=owner.metadata.name, uid=owner.metadata.uid
            )
        ]
    return ConfigMap(
        metadata=ObjectMeta(
            name=name, namespace=ns, ownerReferences=refs, finalizers=finalizers, labels=labels
        ),
        data={"k": "v"},
    )


async def exists(client: Any, res: Any, name: str, ns: str | None = None) -> bool:
    try:
        await client.get(res, name, namespace=ns)
    except ApiError as e:
        if e.status.code == 404:
            return False
        raise
    return True


async def test_finalizer_marks_then_last_removal_deletes(client: Any, ns: str) -> None:
    await client.create(cm("f", ns, finalizers=["example.com/hold"]))
    await client.delete(ConfigMap, "f", namespace=ns)
    held = await client.get(ConfigMap, "f", namespace=ns)
    assert held.metadata.deletionTimestamp is not None
    await client.patch(ConfigMap, "f", {"metadata": {"finalizers": None}}, namespace=ns)
    assert not await exists(client, ConfigMap, "f", ns)


async def test_delete_precondition_uid_mismatch_is_409(
    cluster: clusters.ThreadedCluster, client: Any, ns: str
) -> None:
    await client.create(cm("pre", ns))
    api = rawhttp.for_cluster(cluster.cluster)
    r = api.request(
        "DELETE",
        f"/api/v1/namespaces/{ns}/configmaps/pre",
        {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-the-uid"}},
    )
    assert r.status == 409 and "Precondition failed: UID in precondition" in r.json()["message"]
    assert await exists(client, ConfigMap, "pre", ns)


async def test_bound_pod_is_deleted_gracefully(client: Any, ns: str) -> None:
    await client.create(
        Pod.from_dict(
            {
                "metadata": {"name": "bound", "namespace": ns},
                "spec": {
                    "nodeName": "node-1",
                    "terminationGracePeriodSeconds": 12,
                    "containers": [{"name": "c", "image": "x"}],
                },
            }
        )
    )
    await client.patch(Pod.Status, "bound", {"status": {"phase": "Running"}}, namespace=ns)
    await client.delete(Pod, "bound", namespace=ns)
    pod = await client.get(Pod, "bound", namespace=ns)
    assert pod.metadata.deletionTimestamp is not None
    assert pod.metadata.deletionGracePeriodSeconds == 12
    await client.delete(Pod, "bound", namespace=ns, grace_period=0)
    assert not await exists(client, Pod, "bound", ns)


async def test_unbound_pod_goes_at_once(client: Any, ns: str) -> None:
    await client.create(
        Pod.from_dict(
            {
                "metadata": {"name": "free", "namespace": ns},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
        )
    )
    await client.delete(Pod, "free", namespace=ns)
    assert not await exists(client, Pod, "free", ns)


async def test_gc_background_deletes_dependents(client: Any, ns: str) -> None:
    owner = await client.create(cm("owner", ns))
    await client.create(cm("dep1", ns, owner=owner))
    await client.create(cm("dep2", ns, owner=owner))
    await client.delete(ConfigMap, "owner", namespace=ns)

    async def gone() -> bool:
        return not await exists(client, ConfigMap, "dep1", ns) and not await exists(
            client, ConfigMap, "dep2", ns
        )

    await wait.wait_for(gone, what="dependents deleted")


async def test_gc_dependent_created_after_owner_is_gone(client: Any, ns: str) -> None:
    owner = await client.create(cm("ghost", ns))
    await client.delete(ConfigMap, "ghost", namespace=ns)
    await client.create(cm("orphaned", ns, owner=owner))

    async def gone() -> bool:
        return not await exists(client, ConfigMap, "orphaned", ns)

    await wait.wait_for(gone, what="dependent of a missing owner deleted")


async def test_gc_foreground_waits_for_dependents(client: Any, ns: str) -> None:
    owner = await client.create(cm("fg", ns))
    await client.create(cm("fgdep", ns, owner=owner, finalizers=["example.com/hold"]))
    await client.delete(ConfigMap, "fg", namespace=ns, cascade=CascadeType.FOREGROUND)
    marked = await client.get(ConfigMap, "fg", namespace=ns)
    assert "foregroundDeletion" in (marked.metadata.finalizers or [])

    async def dep_marked() -> bool:
        d = await client.get(ConfigMap, "fgdep", namespace=ns)
        return d.metadata.deletionTimestamp is not None

    await wait.wait_for(dep_marked, what="dependent marked for deletion")
    assert await exists(client, ConfigMap, "fg", ns)
    await client.patch(ConfigMap, "fgdep", {"metadata": {"finalizers": None}}, namespace=ns)

    async def owner_gone() -> bool:
        return not await exists(client, ConfigMap, "fg", ns)

    await wait.wait_for(owner_gone, what="owner deleted after its dependents")


async def test_gc_orphan_keeps_dependents_without_reference(client: Any, ns: str) -> None:
    owner = await client.create(cm("orph", ns))
    await client.create(cm("kept", ns, owner=owner))
    await client.delete(ConfigMap, "orph", namespace=ns, cascade=CascadeType.ORPHAN)

    async def owner_gone() -> bool:
        return not await exists(client, ConfigMap, "orph", ns)

    await wait.wait_for(owner_gone, what="orphaning owner deleted")
    kept = await client.get(ConfigMap, "kept", namespace=ns)
    assert not kept.metadata.ownerReferences


async def test_deletecollection_with_selectors(
    cluster: clusters.ThreadedCluster, client: Any, ns: str
) -> None:
    for i in range(3):
        await client.create(cm(f"a{i}", ns, labels={"batch": "a"}))
    await client.create(cm("b0", ns, labels={"batch": "b"}))
    api = rawhttp.for_cluster(cluster.cluster)
    r = api.request(
        "DELETE",
        f"/api/v1/namespaces/{ns}/configmaps?labelSelector=batch%3Da&fieldSelector=metadata.name!%3Da2",
    )
    assert r.status == 200 and sorted(i["metadata"]["name"] for i in r.json()["items"]) == ["a0", "a1"]
    await client.deletecollection(ConfigMap, namespace=ns, dry_run=True)
    r = api.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=batch%3Da")
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["a2"]
    left = sorted(
        [o.metadata.name async for o in client.list(ConfigMap, namespace=ns, labels={"batch": "b"})]
    )
    assert left == ["b0"]
    assert sorted([o.metadata.name async for o in client.list(ConfigMap, namespace=ns)]) == [
        "b0",
        "kube-root-ca.crt",
    ]


async def test_namespace_deletion(cluster: clusters.ThreadedCluster, client: Any) -> None:
    name = clusters.unique("doomed")
    await client.create(Namespace(metadata=ObjectMeta(name=name)))
    await client.create(cm("x", name))
    await client.create(cm("held", name, finalizers=["example.com/hold"]))
    await client.create(
        Pod.from_dict(
            {
                "metadata": {"name": "p", "namespace": name},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
        )
    )
    await client.delete(Namespace, name)
    ns_obj = await client.get(Namespace, name)
    assert ns_obj.status.phase == "Terminating"
    with pytest.raises(ApiError) as e:
        await client.create(cm("late", name))
    assert e.value.status.code == 403
    assert e.value.status.message == (
        f'configmaps "late" is forbidden: unable to create new content in namespace {name} '
        "because it is being terminated"
    )

    async def only_held_left() -> bool:
        return [o.metadata.name async for o in client.list(ConfigMap, namespace=name)] == ["held"] and not [
            p async for p in client.list(Pod, namespace=name)
        ]

    await wait.wait_for(only_held_left, what="namespace contents deleted")
    assert await exists(client, Namespace, name)  # still waiting for the finalizer
    await client.patch(ConfigMap, "held", {"metadata": {"finalizers": None}}, namespace=name)

    async def ns_gone() -> bool:
        return not await exists(client, Namespace, name)

    await wait.wait_for(ns_gone, what="namespace removed")
