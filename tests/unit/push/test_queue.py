import asyncio

import pytest

from meshplane.model.ids import Hostname
from meshplane.push import context, debounce, metrics, pending, queue
from tests.support import memsource

pytestmark = pytest.mark.looptime(start=1000)


class Target:
    def __init__(self) -> None:
        self.got: list[tuple[context.PushContext, context.PushRequest]] = []

    def push(self, ctx: context.PushContext, request: context.PushRequest) -> int:
        self.got.append((ctx, request))
        return 3


def full(reason: str = "config") -> context.PushRequest:
    return context.PushRequest(full=True, reasons=frozenset({reason}))


def eds(host: str) -> context.PushRequest:
    return context.PushRequest(
        full=False, eds_hosts=frozenset({Hostname(host)}), reasons=frozenset({"endpoint"})
    )


async def test_one_snapshot_per_debounced_push_with_a_new_version_each_time() -> None:
    src = memsource.MemorySource()
    target = Target()
    m = metrics.Metrics()
    q = queue.PushQueue(src, target, metrics=m, debounce_options=debounce.DebounceOptions(0.1, 10))
    await q.start()
    try:
        for _ in range(5):
            q.enqueue(eds("a.ns.svc.cluster.local"))
        q.enqueue(full())
        await q.wait_pushes(1)
        await asyncio.sleep(1)
        q.enqueue(eds("b.ns.svc.cluster.local"))
        await q.wait_pushes(2)
    finally:
        await q.stop()
    assert src.snapshots == 2
    (ctx1, req1), (ctx2, req2) = target.got
    assert req1.full and not req2.full and req2.eds_hosts == {"b.ns.svc.cluster.local"}
    assert ctx1.version != ctx2.version and q.current is ctx2
    assert req1.start > 0  # stamped at enqueue for convergence timing
    text = m.render().decode()
    assert 'pilot_push_triggers{type="endpoint"} 6.0' in text
    assert 'pilot_push_triggers{type="config"} 1.0' in text
    assert "pilot_debounce_time_count 2.0" in text


async def test_a_failing_snapshot_is_logged_and_the_next_change_still_pushes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Flaky(memsource.MemorySource):
        def snapshot(self, version: str) -> context.PushContext:
            if self.snapshots == 0:
                self.snapshots += 1
                raise RuntimeError("registry broke")
            return super().snapshot(version)

    target = Target()
    q = queue.PushQueue(Flaky(), target, metrics=metrics.Metrics())
    await q.start()
    try:
        q.enqueue(full())
        await asyncio.sleep(1)
        q.enqueue(full())
        await asyncio.sleep(1)
    finally:
        await q.stop()
    assert "push failed" in caplog.text and "registry broke" in caplog.text
    assert len(target.got) == 1


def test_pending_push_coalesces_into_one_with_the_newest_context_and_earliest_start() -> None:
    src = memsource.MemorySource()
    p = pending.PendingPush()
    c1, c2 = src.snapshot("v1"), src.snapshot("v2")
    assert not p.offer(
        c1, context.PushRequest(full=False, eds_hosts=frozenset({Hostname("a")}), start=5), 1.0
    )
    assert p.offer(c2, context.PushRequest(full=False, eds_hosts=frozenset({Hostname("b")}), start=7), 2.0)
    push = p.take()
    assert push is not None and push.ctx is c2 and push.enqueued == 1.0
    assert push.request.eds_hosts == {"a", "b"} and push.request.start == 5 and not push.request.full
    assert p.take() is None and not p
