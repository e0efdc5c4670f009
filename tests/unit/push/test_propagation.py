"""The propagation tracker: a change is measured to the ACK of the last proxy it was sent to."""

from __future__ import annotations

import datetime as dt

import pytest
from lightkube.models import meta_v1
from lightkube.resources import discovery_v1

from meshplane.push import context, metrics, propagation
from tests.support.fakeclock import FakeClock


def sample(m: metrics.Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def count(m: metrics.Metrics, cluster: str, type_: str) -> float:
    return sample(m, "meshplane_config_propagation_seconds_count", cluster=cluster, type=type_) or 0.0


def setup() -> tuple[metrics.Metrics, FakeClock, propagation.Tracker]:
    m, clock = metrics.Metrics(), FakeClock()
    return m, clock, propagation.Tracker(m, clock)


def test_recorded_when_the_last_proxy_acks_not_at_the_send_nor_the_first_ack() -> None:
    m, clock, t = setup()
    o = propagation.Origin("cluster2", clock.now)
    t.fanout([o], ["a", "b"])
    clock.now += 0.1
    t.sent("a", t.take("a"), ["eds"], start=o.observed)
    t.sent("b", t.take("b"), ["eds"], start=o.observed)
    clock.now += 0.2
    t.acked("a", "eds")
    assert count(m, "cluster2", "eds") == 0  # b has not ACKed yet
    assert sample(m, "pilot_proxy_convergence_time_count") == 1  # a converged, at its ACK
    clock.now += 0.3
    t.acked("b", "eds")
    assert count(m, "cluster2", "eds") == 1
    assert sample(
        m, "meshplane_config_propagation_seconds_sum", cluster="cluster2", type="eds"
    ) == pytest.approx(0.6)
    assert sample(m, "pilot_proxy_convergence_time_sum") == pytest.approx(0.3 + 0.6)
    assert t.in_flight == 0
    assert t.summary()["cluster2"]["p50"] == pytest.approx(0.6)


def test_a_change_sent_to_no_proxy_records_nothing() -> None:
    m, _, t = setup()
    o = propagation.Origin("cluster2", 1.0)
    t.fanout([o], ["a"])
    t.sent("a", t.take("a"), [])  # nothing of it was relevant to proxy a
    t.acked("a", "eds")
    t.fanout([propagation.Origin("cluster1", 2.0)], [])  # no proxy connected
    assert count(m, "cluster2", "eds") == 0 and count(m, "cluster1", "eds") == 0
    assert t.in_flight == 0 and t.summary() == {}


def test_each_type_ends_at_its_own_ack_and_a_nack_records_none_for_that_type() -> None:
    m, clock, t = setup()
    o = propagation.Origin("cluster1", clock.now)
    t.fanout([o], ["a"])
    t.sent("a", t.take("a"), ["cds", "eds", "lds"], start=o.observed)
    clock.now += 1
    t.acked("a", "cds")
    t.nacked("a", "lds")
    assert count(m, "cluster1", "cds") == 1 and count(m, "cluster1", "lds") == 0
    clock.now += 1
    t.acked("a", "eds")
    assert sample(m, "meshplane_config_propagation_seconds_sum", cluster="cluster1", type="eds") == 2
    assert sample(m, "pilot_proxy_convergence_time_count") is not None
    assert sample(m, "pilot_proxy_convergence_time_count") == 0  # rejected LDS: never converged
    assert t.in_flight == 0


def test_a_proxy_that_disconnects_is_no_longer_waited_for() -> None:
    m, clock, t = setup()
    o = propagation.Origin("cluster2", clock.now)
    t.fanout([o], ["a", "b", "c"])
    t.sent("a", t.take("a"), ["eds"])
    t.acked("a", "eds")
    t.sent("b", t.take("b"), ["eds"])
    t.gone("b")  # sent, never ACKed
    assert count(m, "cluster2", "eds") == 0
    t.gone("c")  # never took the push
    assert count(m, "cluster2", "eds") == 1 and t.in_flight == 0


def test_a_push_taken_later_carries_every_change_offered_before() -> None:
    m, clock, t = setup()
    first, second = propagation.Origin("cluster2", 1.0), propagation.Origin("cluster1", 2.0)
    t.fanout([first], ["a"])
    t.fanout([second], ["a"])  # merged into a's pending push before it took it
    clock.now = 5.0
    t.sent("a", t.take("a"), ["eds"])
    t.acked("a", "eds")
    assert sample(m, "meshplane_config_propagation_seconds_sum", cluster="cluster2", type="eds") == 4.0
    assert sample(m, "meshplane_config_propagation_seconds_sum", cluster="cluster1", type="eds") == 3.0


def test_merged_requests_keep_the_first_change_per_cluster() -> None:
    a1, a2, b = (propagation.Origin("c2", 2.0), propagation.Origin("c2", 1.0), propagation.Origin("c1", 3.0))
    r = context.PushRequest(full=False, origins=(a1,)).merge(context.PushRequest(full=False, origins=(a2, b)))
    assert set(map(id, r.origins)) == {id(a2), id(b)}


def test_from_write_uses_the_newest_managed_fields_time() -> None:
    m, clock, t = setup()
    when = dt.datetime.fromtimestamp(clock.now - 3, dt.UTC)
    obj = discovery_v1.EndpointSlice(
        addressType="IPv4",
        endpoints=[],
        metadata=meta_v1.ObjectMeta(
            name="s",
            managedFields=[
                meta_v1.ManagedFieldsEntry(manager="kubectl", time=when - dt.timedelta(seconds=60)),
                meta_v1.ManagedFieldsEntry(manager="controller", time=when),
            ],
        ),
    )
    assert propagation.written_at(obj) == when.timestamp()
    as_dict = {"metadata": {"managedFields": [{"time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}]}}
    assert propagation.written_at(as_dict) == when.timestamp()
    assert propagation.written_at({"metadata": {"name": "no-fields"}}) is None
    o = propagation.Origin("cluster2", clock.now, propagation.written_at(obj))
    t.fanout([o], ["a"])
    t.sent("a", t.take("a"), ["eds"])
    clock.now += 1
    t.acked("a", "eds")
    got = sample(m, "meshplane_config_propagation_from_write_seconds_sum", cluster="cluster2", type="eds")
    assert got == 4.0
    text = m.render().decode()
    assert 'meshplane_config_propagation_seconds_bucket{cluster="cluster2",le="0.005",type="eds"}' in text
