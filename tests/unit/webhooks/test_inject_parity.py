"""Injection parity with Istio's template and injector: ISTIO_META_ISTIO_VERSION and the Prometheus
merge (pkg/kube/inject/inject.go applyPrometheusMerge), checked on the pod the patch produces."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from meshplane.devcluster.api import patch as jsonpatch_apply
from meshplane.webhooks import inject, settings


def _apply(pod: dict[str, Any], s: settings.InjectionSettings) -> dict[str, Any]:
    result = inject.inject(pod, "sample", s, "/inject")
    assert result.patch is not None, result.reason
    out: dict[str, Any] = jsonpatch_apply.json_patch(copy.deepcopy(pod), result.patch)
    return out


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    (proxy,) = [c for c in pod["spec"]["containers"] if c["name"] == "istio-proxy"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in proxy["env"]}


def _with(pod: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    p = copy.deepcopy(pod)
    p["metadata"]["annotations"] = {**(p["metadata"].get("annotations") or {}), **annotations}
    return p


STATS = {
    "prometheus.io/port": "15020",
    "prometheus.io/path": "/stats/prometheus",
    "prometheus.io/scrape": "true",
}


def test_istio_version_is_the_proxy_image_tag(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings
) -> None:
    assert _env(_apply(pod, inj_settings))["ISTIO_META_ISTIO_VERSION"] == "0.1.0"
    istio = dataclasses.replace(inj_settings, proxy_image="docker.io/istio/proxyv2:1.24.2")
    assert _env(_apply(pod, istio))["ISTIO_META_ISTIO_VERSION"] == "1.24.2"
    registry_port = dataclasses.replace(inj_settings, proxy_image="registry.local:5000/me/proxyv2")
    assert "ISTIO_META_ISTIO_VERSION" not in _env(_apply(pod, registry_port))


def test_pod_without_scrape_annotations_is_scraped_on_the_agent(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings
) -> None:
    out = _apply(pod, inj_settings)
    annotations = out["metadata"]["annotations"]
    assert {k: annotations[k] for k in STATS} == STATS
    assert "ISTIO_PROMETHEUS_ANNOTATIONS" not in _env(out)


def test_the_apps_own_scrape_config_moves_to_the_sidecar(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings
) -> None:
    mine = {"prometheus.io/scrape": "true", "prometheus.io.port": "9090", "prometheus.io/path": "/metrics"}
    out = _apply(_with(pod, mine), inj_settings)
    annotations = out["metadata"]["annotations"]
    assert "prometheus.io.port" not in annotations  # every spelling of the key is replaced
    assert {k: annotations[k] for k in STATS} == STATS
    assert json.loads(_env(out)["ISTIO_PROMETHEUS_ANNOTATIONS"]) == {
        "scrape": "true",
        "path": "/metrics",
        "port": "9090",
    }


def test_opt_outs_leave_the_annotations_alone(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings
) -> None:
    for mine in (
        {"prometheus.io/scrape": "false", "prometheus.io/port": "9090"},
        {"prometheus.istio.io/merge-metrics": "false", "prometheus.io/port": "9090"},
        {"prometheus.io/port": "15020", "prometheus.io/path": "/custom"},  # already on the agent
    ):
        out = _apply(_with(pod, mine), inj_settings)
        annotations = out["metadata"]["annotations"]
        assert {k: annotations.get(k) for k in mine} == mine, mine
        assert "ISTIO_PROMETHEUS_ANNOTATIONS" not in _env(out)


def test_turning_the_merge_off_mesh_wide_is_refused_at_install() -> None:
    """meshConfig.enablePrometheusMerge: false would be ignored by the injector: refused, named."""
    from meshplane.installer import config, errors

    text = "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  meshConfig:\n"
    with pytest.raises(errors.ConfigError, match=r"spec\.meshConfig\.enablePrometheusMerge"):
        config.load([("in.yaml", text + "    enablePrometheusMerge: false\n")])
    config.load([("in.yaml", text + "    enablePrometheusMerge: true\n")])


def test_mesh_wide_proxy_metadata_is_refused_at_install() -> None:
    """meshConfig.defaultConfig.proxyMetadata never reaches the injector: refused, named, with the
    per-pod annotation as the way that works."""
    from meshplane.installer import config, errors

    text = (
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  meshConfig:\n"
        "    defaultConfig:\n      proxyMetadata:\n        ISTIO_META_DNS_CAPTURE: 'true'\n"
    )
    with pytest.raises(errors.ConfigError, match=r"spec\.meshConfig\.defaultConfig\.proxyMetadata"):
        config.load([("in.yaml", text)])


def test_proxy_config_annotation_sets_proxy_metadata_on_both_containers(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings
) -> None:
    mine = {"proxy.istio.io/config": '{"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}}'}
    out = _apply(_with(pod, mine), inj_settings)
    assert _env(out)["ISTIO_META_DNS_CAPTURE"] == "true"
    (init,) = out["spec"]["initContainers"]
    assert init["env"] == [{"name": "ISTIO_META_DNS_CAPTURE", "value": "true"}]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("holdApplicationUntilProxyStarts: true", "proxy.istio.io/config].holdApplicationUntilProxyStarts"),
        ("proxyMetadata: [1]", "proxyMetadata: expected a mapping"),
        ('proxyMetadata: {"1BAD": "x"}', "not an environment variable name"),
        ("{not: [yaml", "not YAML or JSON"),
    ],
)
def test_unsupported_proxy_config_is_refused_with_the_field_named(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings, value: str, named: str
) -> None:
    from meshplane.webhooks import errors

    with pytest.raises(errors.WebhookError) as e:
        inject.inject(_with(pod, {"proxy.istio.io/config": value}), "sample", inj_settings, "/inject")
    assert named in str(e.value)
