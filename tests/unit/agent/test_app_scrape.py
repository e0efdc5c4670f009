"""ISTIO_PROMETHEUS_ANNOTATIONS as the agent reads it (Istio's status server NewServer)."""

from __future__ import annotations

import pytest

from meshplane.agent import config, errors


def test_defaults_and_opt_out() -> None:
    assert config.app_scrape('{"scrape":"true","path":"","port":""}', 15020) == config.AppScrape(
        80, "/metrics"
    )
    assert config.app_scrape('{"scrape":"true","path":"/m","port":"9090"}', 15020) == config.AppScrape(
        9090, "/m"
    )
    assert config.app_scrape('{"scrape":"false","port":"9090"}', 15020) is None
    assert config.app_scrape(None, 15020) is None


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("{not json", "is not JSON"),
        ('{"port": 9090}', 'strings "scrape", "path", "port"'),
        ('{"port":"http"}', "port 'http' is not a port number"),
        ('{"scrape":"true","port":"15020"}', "status port 15020"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(value: str, named: str) -> None:
    with pytest.raises(errors.ConfigError, match="ISTIO_PROMETHEUS_ANNOTATIONS") as e:
        config.app_scrape(value, 15020)
    assert named in str(e.value)
