"""list/watch semantics: paging, resourceVersion start points, 410, bookmarks, timeouts, selectors."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from meshplane.devcluster.api import context
from tests.support import clusters, rawhttp, wait

HISTORY = 20


@pytest.fixture(scope="module")
def cluster_options() -> dict[str, Any]:
    """Short history and frequent bookmarks, both real settings of the server."""
    return {"name": "watch", "settings": context.Settings(history_size=HISTORY, bookmark_interval=0.2)}


@pytest.fixture
def api(cluster: clusters.ThreadedCluster) -> rawhttp.Api:
    return rawhttp.for_cluster(cluster.cluster)


def cm(name: str, ns: str, labels: dict[str, str] | None = None) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, namespace=ns, labels=labels), data={"k": "v"})


# Objects made by these tests carry set=t; selecting on it keeps others (kube-root-ca.crt) out.
OURS = "labelSelector=set%3Dt"
NOTHING = "labelSelector=set%3Dnothing"


def churn(api: rawhttp.Api, ns: str, n: int) -> None:
    for i in range(n):
        r = api.request(
            "POST",
            f"/api/v1/namespaces/{ns}/configmaps",
            {"metadata": {"generateName": "churn-", "labels": {"set": "t"}}, "data": {"i": str(i)}},
        )
        assert r.status == 201


async def test_paging_with_limit_and_continue(client: Any, api: rawhttp.Api, ns: str) -> None:
    for i in range(5):
        await client.create(cm(f"p{i}", ns, {"set": "t"}))
    first = api.get(f"/api/v1/namespaces/{ns}/configmaps?limit=2&{OURS}").json()
    assert [o["metadata"]["name"] for o in first["items"]] == ["p0", "p1"]
    assert first["metadata"]["remainingItemCount"] == 3
    token = first["metadata"]["continue"]
    second = api.get(f"/api/v1/namespaces/{ns}/configmaps?limit=2&{OURS}&continue={token}").json()
    assert [o["metadata"]["name"] for o in second["items"]] == ["p2", "p3"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    third = api.get(
        f"/api/v1/namespaces/{ns}/configmaps?limit=2&{OURS}&continue={second['metadata']['continue']}"
    ).json()
    assert [o["metadata"]["name"] for o in third["items"]] == ["p4"] and "continue" not in third["metadata"]
    # lightkube pages through the same API
    names = [
        o.metadata.name async for o in client.list(ConfigMap, namespace=ns, chunk_size=2, labels={"set": "t"})
    ]
    assert names == [f"p{i}" for i in range(5)]


async def test_stale_continue_is_410(api: rawhttp.Api, ns: str) -> None:
    churn(api, ns, 2)
    token = api.get(f"/api/v1/namespaces/{ns}/configmaps?limit=1").json()["metadata"]["continue"]
    churn(api, ns, HISTORY + 2)
    r = api.get(f"/api/v1/namespaces/{ns}/configmaps?limit=1&continue={token}")
    assert r.status == 410 and r.json()["reason"] == "Expired"
    bad = api.get(f"/api/v1/namespaces/{ns}/configmaps?limit=1&continue=garbage")
    assert bad.status == 400


async def test_watch_from_too_old_rv_gets_410_error_event(client: Any, api: rawhttp.Api, ns: str) -> None:
    old_rv = api.get(f"/api/v1/namespaces/{ns}/configmaps").json()["metadata"]["resourceVersion"]
    churn(api, ns, HISTORY + 2)
    w = api.watch(f"/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={old_rv}")
    try:
        ev = w.next()
    finally:
        w.close()
    assert ev["type"] == "ERROR"
    assert ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
    assert "too old resource version" in ev["object"]["message"]
    with pytest.raises(ApiError) as e:
        async for _ in client.watch(ConfigMap, namespace=ns, resource_version=old_rv):
            pass
    assert e.value.status.code == 410


async def test_watch_from_rv_delivers_every_later_change_in_order(api: rawhttp.Api, ns: str) -> None:
    rv = api.get(f"/api/v1/namespaces/{ns}/configmaps").json()["metadata"]["resourceVersion"]
    churn(api, ns, 3)
    w = api.watch(f"/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}")
    try:
        it = w.events()
        evs = [next(it) for _ in range(3)]
    finally:
        w.close()
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
    assert [e["type"] for e in evs] == ["ADDED"] * 3 and rvs == sorted(rvs) and rvs[0] > int(rv)


async def test_bookmarks_when_allowed(api: rawhttp.Api, ns: str) -> None:
    w = api.watch(
        f"/api/v1/namespaces/{ns}/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=0&{NOTHING}"
    )
    try:
        ev = w.next()
    finally:
        w.close()
    assert ev["type"] == "BOOKMARK"
    assert ev["object"]["kind"] == "ConfigMap" and int(ev["object"]["metadata"]["resourceVersion"]) > 0


async def test_send_initial_events_ends_with_marked_bookmark(api: rawhttp.Api, ns: str) -> None:
    churn(api, ns, 2)
    w = api.watch(
        f"/api/v1/namespaces/{ns}/configmaps?watch=1&sendInitialEvents=true&{OURS}"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    )
    try:
        it = w.events()
        evs = [next(it) for _ in range(3)]
    finally:
        w.close()
    assert [e["type"] for e in evs] == ["ADDED", "ADDED", "BOOKMARK"]
    assert evs[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_timeout_seconds_ends_the_watch(api: rawhttp.Api, ns: str) -> None:
    start = time.monotonic()
    w = api.watch(f"/api/v1/namespaces/{ns}/configmaps?watch=1&timeoutSeconds=1&resourceVersion=0&{NOTHING}")
    try:
        assert list(w.events()) == []
    finally:
        w.close()
    assert 0.9 <= time.monotonic() - start < 5


async def test_selector_transitions_become_added_and_deleted(client: Any, api: rawhttp.Api, ns: str) -> None:
    await client.create(cm("sel", ns))
    rv = api.get(f"/api/v1/namespaces/{ns}/configmaps").json()["metadata"]["resourceVersion"]
    await client.patch(ConfigMap, "sel", {"metadata": {"labels": {"app": "x"}}}, namespace=ns)
    await client.patch(ConfigMap, "sel", {"data": {"k": "2"}}, namespace=ns)
    await client.patch(ConfigMap, "sel", {"metadata": {"labels": {"app": "y"}}}, namespace=ns)
    w = api.watch(f"/api/v1/namespaces/{ns}/configmaps?watch=1&labelSelector=app%3Dx&resourceVersion={rv}")
    try:
        it = w.events()
        types = [next(it)["type"] for _ in range(3)]
    finally:
        w.close()
    assert types == ["ADDED", "MODIFIED", "DELETED"]


async def test_field_selectors(client: Any, api: rawhttp.Api, ns: str) -> None:
    r = api.get(f"/api/v1/namespaces/{ns}/pods?fieldSelector=spec.nodeName%3Dn1,status.phase!%3DFailed")
    assert r.status == 200
    r = api.get("/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Ftls")
    assert r.status == 200
    r = api.get(f"/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3Dx")
    assert r.status == 200
    bad = api.get(f"/api/v1/namespaces/{ns}/configmaps?fieldSelector=data.k%3Dv")
    assert bad.status == 400 and bad.json()["message"] == "field label not supported: data.k"
    badl = api.get(f"/api/v1/namespaces/{ns}/configmaps?labelSelector=a%20in%20(b")
    assert badl.status == 400


async def test_disconnected_watchers_leave_nothing_behind(
    cluster: clusters.ThreadedCluster, api: rawhttp.Api, ns: str
) -> None:
    store = cluster.cluster.store

    def counts() -> tuple[int, int]:
        return cluster.run(lambda: (store.subscriber_count, len(asyncio.all_tasks())))

    subs_before, tasks_before = counts()
    watches = [api.watch(f"/api/v1/namespaces/{ns}/configmaps?watch=1") for _ in range(5)]
    await wait.wait_for(lambda: counts()[0] >= subs_before + 5, what="watchers registered")
    assert counts()[1] >= tasks_before + 5
    for w in watches:
        w.close()
    await wait.wait_for(
        lambda: counts()[0] == subs_before and counts()[1] <= tasks_before,
        what="watchers and their tasks gone",
    )


async def test_future_resource_version_is_rejected(api: rawhttp.Api, ns: str) -> None:
    rv = int(api.get(f"/api/v1/namespaces/{ns}/configmaps").json()["metadata"]["resourceVersion"])
    r = api.get(f"/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv + 1000}")
    assert r.status == 504 and r.json()["message"].startswith("Too large resource version")
    r = api.get(
        f"/api/v1/namespaces/{ns}/configmaps?resourceVersion={rv + 1000}&resourceVersionMatch=NotOlderThan"
    )
    assert r.status == 504
    r = api.get(f"/api/v1/namespaces/{ns}/configmaps?resourceVersion={rv - 1}&resourceVersionMatch=Exact")
    assert r.status == 410


async def test_paging_across_namespaces_returns_everything_once(api: rawhttp.Api) -> None:
    base = clusters.unique("pg")
    label = base.replace("-", "")
    spaces = [base, f"{base}-b"]  # "-" sorts before "/": paging must follow (namespace, name) order
    for ns in spaces:
        assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
        for name in ("a", "z"):
            r = api.request(
                "POST",
                f"/api/v1/namespaces/{ns}/configmaps",
                {"metadata": {"name": name, "labels": {"page": label}}},
            )
            assert r.status == 201
    seen: list[tuple[str, str]] = []
    token = ""
    for _ in range(10):
        q = f"/api/v1/configmaps?labelSelector=page%3D{label}&limit=1" + (
            f"&continue={token}" if token else ""
        )
        page = api.get(q).json()
        seen += [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert seen == [(base, "a"), (base, "z"), (f"{base}-b", "a"), (f"{base}-b", "z")]


async def test_resumed_watch_replays_only_its_own_kind(api: rawhttp.Api, ns: str) -> None:
    rv = api.get(f"/api/v1/namespaces/{ns}/configmaps").json()["metadata"]["resourceVersion"]
    secret = {"metadata": {"name": "s", "labels": {"set": "t"}}, "stringData": {"a": "b"}}
    assert api.request("POST", f"/api/v1/namespaces/{ns}/secrets", secret).status == 201
    churn(api, ns, 1)
    w = api.watch(f"/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}&{OURS}")
    try:
        ev = w.next()
    finally:
        w.close()
    assert ev["object"]["kind"] == "ConfigMap" and ev["object"]["metadata"]["name"].startswith("churn-")
