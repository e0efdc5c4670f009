"""The store: RVs, events, history and 410, hooks, persistence (SQLite and memory)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from meshplane.devcluster import errors
from meshplane.devcluster.storage import persistence, store
from meshplane.runtime import clock


def cm(name: str, ns: str = "n", **data: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


async def open_store(path: Path | None, history: int = 100) -> store.Store:
    p: persistence.Persistence = (
        persistence.SqlitePersistence(path) if path else persistence.MemoryPersistence()
    )
    s = store.Store(p, clock.SystemClock(), history_size=history)
    await s.open()
    return s


async def test_rv_events_and_conflicts() -> None:
    s = await open_store(None)
    sub = s.subscribe({"configmaps"})
    a = await s.create("configmaps", cm("a"))
    assert a["metadata"]["resourceVersion"] == "1" and a["metadata"]["generation"] == 1
    with pytest.raises(errors.ApiError) as e:
        await s.create("configmaps", cm("a"))
    assert e.value.code == 409 and e.value.reason == "AlreadyExists"
    b = await s.update("configmaps", dict(a, data={"x": "1"}), expected_rv=1)
    assert b["metadata"]["resourceVersion"] == "2" and b["metadata"]["uid"] == a["metadata"]["uid"]
    with pytest.raises(errors.ApiError) as e:
        await s.update("configmaps", dict(a, data={"x": "2"}), expected_rv=1)
    assert e.value.code == 409
    await s.delete("configmaps", "n", "a")
    evs = [await sub.get() for _ in range(3)]
    assert [(ev.type, ev.rv) for ev in evs if ev] == [("ADDED", 1), ("MODIFIED", 2), ("DELETED", 3)]
    assert evs[1] is not None and evs[1].old is not None and evs[1].old["metadata"]["resourceVersion"] == "1"
    await s.close()


async def test_history_window_and_410() -> None:
    s = await open_store(None, history=3)
    for i in range(5):
        await s.create("configmaps", cm(f"c{i}"))
    assert [ev.rv for ev in s.history_since(3)] == [4, 5]
    with pytest.raises(errors.ApiError) as e:
        s.history_since(1)
    assert e.value.code == 410 and "too old resource version" in e.value.message
    await s.close()


async def test_get_returns_copies_and_finalizers_block_deletion() -> None:
    s = await open_store(None)
    await s.create("configmaps", cm("f"))
    got = s.get("configmaps", "n", "f")
    assert got is not None
    got["data"]["k"] = "mutated"
    assert s.peek("configmaps", "n", "f")["data"] == {}  # type: ignore[index]
    marked = dict(
        got, metadata=dict(got["metadata"], deletionTimestamp="2020-01-01T00:00:00Z", finalizers=["x"])
    )
    kept = await s.update("configmaps", marked)
    assert kept["metadata"]["deletionTimestamp"]
    cleared = dict(kept, metadata=dict(kept["metadata"], finalizers=[]))
    await s.update("configmaps", cleared)
    assert s.peek("configmaps", "n", "f") is None
    await s.close()


async def test_sqlite_persistence_survives_reopen_and_rv_continues(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    s = await open_store(db)
    await s.create("configmaps", cm("a", k="1"))
    await s.create("apps/deployments", cm("d"))
    await s.delete_many("configmaps", [("n", "a")])
    await s.create("configmaps", cm("b"))
    await s.close()
    s2 = await open_store(db)
    assert s2.rv == 4 and s2.floor == 4
    assert s2.get("configmaps", "n", "a") is None and s2.get("configmaps", "n", "b") is not None
    assert s2.count("apps/deployments") == 1
    c = await s2.create("configmaps", cm("c"))
    assert c["metadata"]["resourceVersion"] == "5"
    with pytest.raises(errors.ApiError):
        s2.history_since(3)
    assert s2.history_since(4)[0].rv == 5
    await s2.close()


async def test_hooks_see_loaded_and_new_objects(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    s = await open_store(db)
    await s.create("configmaps", cm("a"))
    await s.close()
    seen: list[tuple[str, str]] = []
    p = persistence.SqlitePersistence(db)
    s2 = store.Store(p, clock.SystemClock())
    s2.add_hook(lambda ev: seen.append((ev.type, ev.obj["metadata"]["name"])))
    await s2.open()
    await s2.create("configmaps", cm("b"))
    assert seen == [("ADDED", "a"), ("ADDED", "b")]
    await s2.close()


async def test_slow_subscriber_is_closed_not_unbounded() -> None:
    s = store.Store(persistence.MemoryPersistence(), clock.SystemClock(), subscriber_queue=2)
    await s.open()
    sub = s.subscribe()
    for i in range(4):
        await s.create("configmaps", cm(f"x{i}"))
    assert sub.overflowed and s.subscriber_count == 0
    await s.close()


async def test_no_op_update_writes_nothing() -> None:
    s = await open_store(None)
    sub = s.subscribe()
    a = await s.create("configmaps", cm("a", k="1"))
    same = await s.update("configmaps", a)
    assert same["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"] and s.rv == 1
    await s.update("configmaps", dict(a, data={"k": "2"}))
    assert s.rv == 2
    assert [(await sub.get()).type for _ in range(2)] == ["ADDED", "MODIFIED"]  # type: ignore[union-attr]
    await s.close()


class FailingPersistence(persistence.MemoryPersistence):
    """Storage that fails on demand (a full disk, a broken file)."""

    def __init__(self) -> None:
        self.fail = False

    async def write(self, rv: int, puts: list[persistence.Row], deletes: list[persistence.Key]) -> None:
        if self.fail:
            raise OSError("disk full")


async def test_failed_batch_write_changes_nothing() -> None:
    p = FailingPersistence()
    s = store.Store(p, clock.SystemClock())
    await s.open()
    for i in range(3):
        await s.create("configmaps", cm(f"c{i}"))
    sub = s.subscribe()
    p.fail = True
    with pytest.raises(errors.ApiError) as e:
        await s.delete_many("configmaps", [("n", "c0"), ("n", "c1"), ("n", "c2")])
    assert e.value.code == 500
    with pytest.raises(errors.ApiError):
        await s.create("configmaps", cm("d"))
    assert s.rv == 3 and s.count("configmaps") == 3 and sub.queue.empty()
    p.fail = False
    await s.delete_many("configmaps", [("n", "c0"), ("n", "c1")])
    assert s.rv == 5 and [o["metadata"]["name"] for o in s.items("configmaps")] == ["c2"]
    await s.close()


class GatedPersistence(persistence.MemoryPersistence):
    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def write(self, rv: int, puts: list[persistence.Row], deletes: list[persistence.Key]) -> None:
        self.entered.set()
        await self.gate.wait()


async def test_a_cancelled_caller_does_not_split_storage_and_memory() -> None:
    p = GatedPersistence()
    s = store.Store(p, clock.SystemClock())
    await s.open()
    caller = asyncio.create_task(s.create("configmaps", cm("a")))
    await p.entered.wait()
    caller.cancel()  # the client went away while its write was being persisted
    second = asyncio.create_task(s.create("configmaps", cm("a")))
    p.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    with pytest.raises(errors.ApiError) as e:
        await second
    assert e.value.reason == "AlreadyExists"  # the first write completed before the second ran
    assert s.rv == 1 and s.peek("configmaps", "n", "a") is not None
    await s.close()
