import asyncio

import pytest

from meshplane.runtime import backoff, podroot, tasks


def test_backoff_grows_and_caps() -> None:
    b = backoff.Backoff(initial=1.0, maximum=4.0, jitter=0.0)
    assert [b.next() for _ in range(5)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next() == 1.0


def test_podroot_maps_absolute_paths(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(podroot.ENV, raising=False)
    assert str(podroot.path("/var/run/x")) == "/var/run/x"
    monkeypatch.setenv(podroot.ENV, str(tmp_path))
    assert podroot.path("/var/run/x") == tmp_path / "var/run/x"
    assert str(podroot.path("rel/x")) == "rel/x"


async def test_taskgroup_stops_in_reverse_order() -> None:
    order: list[str] = []
    group = tasks.TaskGroup("t")

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            order.append(name)

    group.start(forever("first"), "first")
    group.start(forever("second"), "second")
    await asyncio.sleep(0)
    await group.stop()
    assert order == ["second", "first"]
