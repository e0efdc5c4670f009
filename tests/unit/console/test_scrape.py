"""console.scrape: rates and p99 over the window from Envoy's cumulative counters, never guessed."""

from __future__ import annotations

import pytest

from meshplane.console import scrape

C = "outbound|5000||helloworld.sample.svc.cluster.local"


def page(total: int, errors: int, buckets: list[list[float]]) -> list[dict[str, object]]:
    host = {"address": "198.18.2.5", "port": 5000, "rq_total": total, "rq_error": errors}
    return [{"name": C, "hosts": [host], "rq_time_ms": buckets, "ssl_handshake": 3}]


def test_rates_over_the_window_from_the_oldest_sample_inside_it() -> None:
    samples = [
        (0.0, page(100, 0, [[1, 50], [5, 100]])),  # outside the 60 s window of the newest
        (10.0, page(200, 0, [[1, 100], [5, 200]])),
        (70.0, page(800, 60, [[1, 150], [5, 700], [25, 800]])),
    ]
    (h,) = scrape.rates(samples, 60.0)
    assert h.rps == pytest.approx(10.0) and h.eps == pytest.approx(1.0) and h.requests == 800
    # 600 requests in the window: 50 ≤1ms, 500 ≤5ms, 50 ≤25ms → the 99th percentile is in the 25ms bucket
    assert h.p99_ms == 25 and h.mtls


def test_no_rate_from_one_sample_or_a_reset_counter() -> None:
    (only,) = scrape.rates([(5.0, page(10, 1, []))], 60.0)
    assert only.rps is None and only.eps is None and only.p99_ms is None and only.requests == 10
    (reset,) = scrape.rates([(0.0, page(500, 0, [])), (5.0, page(20, 0, []))], 60.0)
    assert reset.rps is None  # Envoy restarted: its counters started again


def test_quantile_of_cumulative_buckets() -> None:
    assert scrape.quantile_ms([(1, 0), (5, 0)], 0.99) is None
    assert scrape.quantile_ms([(1, 99), (5, 100)], 0.99) == 1
    assert scrape.quantile_ms([(1, 98), (5, 100)], 0.99) == 5


async def test_collector_scrapes_only_while_watched_and_reports_unreachable_proxies() -> None:
    c = scrape.Collector(lambda: [("p1.ns", "127.0.0.1")], port=1, timeout=1.0)
    assert not c.watched
    c.touch()
    assert c.watched
    await c.scrape_once()
    t = c.traffic()
    assert t.for_proxy("p1.ns") == [] and "127.0.0.1:1/stats/upstreams" in t.errors["p1.ns"]
