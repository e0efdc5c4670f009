"""Sidecar parsing, validation and scope selection (istio/istio pilot/pkg/model/sidecar.go,
pkg/config/validation ValidateSidecar)."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.networking import config, errors, sidecar


def _sc(
    spec: dict[str, Any], name: str = "sc", namespace: str = "sample", created: str = ""
) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": namespace}
    if created:
        md["creationTimestamp"] = created
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "Sidecar", "metadata": md, "spec": spec}


def _parse(spec: dict[str, Any]) -> sidecar.Sidecar:
    return sidecar.parse(_sc(spec))


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"ingress": [{"port": {"number": 80}}]}, "spec.ingress: is not supported"),
        ({"inboundConnectionPool": {}}, "spec.inboundConnectionPool: is not supported"),
        ({"egress": [{"hosts": ["./*"], "port": {"number": 80}}]}, "spec.egress[0].port: is not supported"),
        ({"egress": [{"hosts": ["./*"], "bind": "127.0.0.1"}]}, "spec.egress[0].bind: is not supported"),
        (
            {"egress": [{"hosts": ["./*"], "captureMode": "NONE"}]},
            "spec.egress[0].captureMode: is not supported",
        ),
        ({"egress": [{"hosts": ["./*"]}], "bogus": 1}, "spec.bogus: unknown field"),
        (
            {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY", "egressProxy": {}}},
            "egressProxy: is not supported",
        ),
        ({"outboundTrafficPolicy": {"mode": "SOMETIMES"}}, "spec.outboundTrafficPolicy.mode: unknown mode"),
        ({"egress": [{"hosts": ["reviews.default.svc.cluster.local"]}]}, "spec.egress[0].hosts[0]:"),
        ({"egress": [{"hosts": ["/*"]}]}, "spec.egress[0].hosts[0]:"),
        ({"egress": [{"hosts": ["ns/bad_name!"]}]}, "spec.egress[0].hosts[0]:"),
        ({"egress": [{"hosts": []}]}, "spec.egress[0].hosts"),
        ({"egress": [{"hosts": ["./*"]}, {"hosts": ["*/*"]}]}, "spec.egress: only one egress listener"),
        ({"workloadSelector": {"labels": {"app": 1}}}, "spec.workloadSelector.labels.app"),
        ({}, "spec: empty configuration"),
    ],
)
def test_invalid_sidecars_are_refused_naming_the_field(spec: dict[str, Any], path: str) -> None:
    with pytest.raises(errors.ConfigError, match="Sidecar sample/sc") as e:
        _parse(spec)
    assert path in str(e.value)


def test_egress_hosts_import_services_as_istio_does() -> None:
    sc = _parse(
        {
            "egress": [
                {
                    "hosts": [
                        "./*",
                        "istio-system/*",
                        "*/ratings.prod.svc.cluster.local",
                        "web/*.web.svc.cluster.local",
                        "~/*",
                    ]
                }
            ]
        }
    )
    # "." is the Sidecar's own namespace
    assert sc.imports("a.sample.svc.cluster.local", "sample")
    assert sc.imports("istiod.istio-system.svc.cluster.local", "istio-system")
    # */host: that host from any namespace, only that host
    assert sc.imports("ratings.prod.svc.cluster.local", "prod")
    assert not sc.imports("other.prod.svc.cluster.local", "prod")
    # ns/*.suffix: wildcard within the namespace
    assert sc.imports("x.web.svc.cluster.local", "web")
    assert not sc.imports("x.other.svc.cluster.local", "other")
    # an explicit namespace import does not leak to another namespace with the same host
    assert not sc.imports("x.web.svc.cluster.local", "elsewhere")
    only_none = _parse({"egress": [{"hosts": ["~/*"]}]})
    assert not only_none.imports("a.sample.svc.cluster.local", "sample")
    # no egress listener: everything is imported (Istio's default egress)
    assert _parse({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}).imports("x.y.svc", "y")


def test_scope_selection_prefers_selector_then_namespace_default_then_root() -> None:
    objs = [
        _sc({"egress": [{"hosts": ["*/*"]}]}, "mesh-default", "istio-system", "2025-01-01T00:00:00Z"),
        _sc({"egress": [{"hosts": ["./*"]}]}, "ns-default", "sample", "2025-01-02T00:00:00Z"),
        _sc({"egress": [{"hosts": ["./*"]}]}, "ns-newer", "sample", "2025-01-03T00:00:00Z"),
        _sc(
            {"workloadSelector": {"labels": {"app": "ratings"}}, "egress": [{"hosts": ["istio-system/*"]}]},
            "ratings",
            "sample",
            "2025-01-04T00:00:00Z",
        ),
        _sc(
            {"workloadSelector": {"labels": {"app": "x"}}, "egress": [{"hosts": ["./*"]}]},
            "rootsel",
            "istio-system",
        ),
    ]
    cfg, problems = config.build(objs)
    assert problems == []
    pick = cfg.sidecar_for
    assert pick("sample", {"app": "ratings", "version": "v1"}).name == "ratings"  # type: ignore[union-attr]
    # two selector-less Sidecars in one namespace: the oldest wins (Istio warns)
    assert pick("sample", {"app": "other"}).name == "ns-default"  # type: ignore[union-attr]
    # no Sidecar in the namespace: the root namespace's selector-less one is the mesh default;
    # a root Sidecar with a selector applies only to root-namespace workloads
    assert pick("other", {"app": "x"}).name == "mesh-default"  # type: ignore[union-attr]
    assert pick("istio-system", {"app": "x"}).name == "rootsel"  # type: ignore[union-attr]
    no_root, _ = config.build(objs[1:])
    assert no_root.sidecar_for("other", {}) is None


def test_webhook_path_reports_a_bad_sidecar_and_keeps_the_good() -> None:
    cfg, problems = config.build([_sc({"ingress": []}, "bad"), _sc({"egress": [{"hosts": ["./*"]}]}, "good")])
    assert [s.name for s in cfg.sidecars] == ["good"]
    assert [str(p) for p in problems] == ["Sidecar sample/bad: spec.ingress: is not supported by meshplane"]
