import asyncio

import pytest

from meshplane.model.ids import Hostname
from meshplane.push import context, debounce
from meshplane.runtime import clock as clock_mod

pytestmark = pytest.mark.looptime


def eds(*hosts: str) -> context.PushRequest:
    return context.PushRequest(
        full=False, eds_hosts=frozenset(Hostname(h) for h in hosts), reasons=frozenset({"eds"})
    )


FULL = context.PushRequest(full=True, reasons=frozenset({"config"}))


class Recorder:
    def __init__(self) -> None:
        self.pushes: list[tuple[float, context.PushRequest, int, float]] = []

    async def __call__(self, req: context.PushRequest, events: int, waited: float) -> None:
        self.pushes.append((asyncio.get_running_loop().time(), req, events, waited))


async def start(opts: debounce.DebounceOptions) -> tuple[debounce.Debouncer, Recorder, asyncio.Task[None]]:
    rec = Recorder()
    d = debounce.Debouncer(opts, rec, clock_mod.SystemClock())
    return d, rec, asyncio.create_task(d.run())


async def test_a_burst_merges_into_one_push_after_the_quiet_period() -> None:
    d, rec, task = await start(debounce.DebounceOptions(after=0.1, max=10))
    t0 = asyncio.get_running_loop().time()
    d.add(eds("a"))
    await asyncio.sleep(0.05)
    d.add(eds("b"))
    await asyncio.sleep(0.05)
    d.add(eds("c"))
    await asyncio.sleep(1)
    task.cancel()
    assert len(rec.pushes) == 1
    at, req, events, waited = rec.pushes[0]
    assert not req.full and req.eds_hosts == {"a", "b", "c"} and events == 3
    # quiet period counted from the last event (t0+0.1), not the first
    assert at == pytest.approx(t0 + 0.2, abs=0.01)
    assert waited == pytest.approx(0.2, abs=0.01)


async def test_a_full_request_makes_the_merged_push_full() -> None:
    d, rec, task = await start(debounce.DebounceOptions(after=0.1, max=10))
    d.add(eds("a"))
    d.add(FULL)
    d.add(eds("b"))
    await asyncio.sleep(1)
    task.cancel()
    ((_, req, events, _),) = rec.pushes
    assert req.full and events == 3 and req.reasons == {"eds", "config"}


async def test_events_far_apart_push_separately() -> None:
    d, rec, task = await start(debounce.DebounceOptions(after=0.1, max=10))
    d.add(eds("a"))
    await asyncio.sleep(0.5)
    d.add(eds("b"))
    await asyncio.sleep(0.5)
    task.cancel()
    assert [p[1].eds_hosts for p in rec.pushes] == [{"a"}, {"b"}]


async def test_a_continuous_stream_of_events_is_pushed_at_the_max_cap() -> None:
    d, rec, task = await start(debounce.DebounceOptions(after=0.1, max=2.0))
    t0 = asyncio.get_running_loop().time()
    for i in range(100):  # one event every 50 ms for 5 s: never quiet for 100 ms
        d.add(eds(f"h{i}"))
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    task.cancel()
    times = [p[0] - t0 for p in rec.pushes]
    assert times[:2] == [pytest.approx(2.0, abs=0.06), pytest.approx(4.0, abs=0.11)]
    assert sum(p[2] for p in rec.pushes) == 100  # nothing lost
    assert set().union(*(p[1].eds_hosts for p in rec.pushes)) == {f"h{i}" for i in range(100)}


async def test_events_during_a_running_push_wait_for_it_and_merge() -> None:
    gate = asyncio.Event()
    rec: list[context.PushRequest] = []

    async def slow(req: context.PushRequest, events: int, waited: float) -> None:
        rec.append(req)
        await gate.wait()

    d = debounce.Debouncer(debounce.DebounceOptions(after=0.1, max=10), slow, clock_mod.SystemClock())
    task = asyncio.create_task(d.run())
    d.add(eds("a"))
    await asyncio.sleep(0.5)
    d.add(eds("b"))
    d.add(eds("c"))
    await asyncio.sleep(0.5)
    assert len(rec) == 1
    gate.set()
    await asyncio.sleep(0.5)
    task.cancel()
    assert [r.eds_hosts for r in rec] == [{"a"}, {"b", "c"}]


@pytest.mark.parametrize(
    ("text", "seconds"), [("100ms", 0.1), ("10s", 10), ("1m30s", 90), ("2.5", 2.5), ("0", 0)]
)
def test_go_durations(text: str, seconds: float) -> None:
    assert debounce.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ten", "10x", "-1s", "1.2.3s", "ms"])
def test_bad_durations_name_the_setting(text: str) -> None:
    with pytest.raises(ValueError, match="PILOT_DEBOUNCE_AFTER"):
        debounce.DebounceOptions.from_env({"PILOT_DEBOUNCE_AFTER": text})


def test_options_from_env() -> None:
    opts = debounce.DebounceOptions.from_env({"PILOT_DEBOUNCE_AFTER": "250ms", "PILOT_DEBOUNCE_MAX": "3s"})
    assert (opts.after, opts.max) == (0.25, 3.0)
    assert debounce.DebounceOptions.from_env({}) == debounce.DebounceOptions(0.1, 10.0)
