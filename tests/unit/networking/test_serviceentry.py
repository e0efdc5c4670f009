"""ServiceEntry parsing and Istio's validation (pkg/config/validation ValidateServiceEntry): valid
entries become services with the right resolution and endpoints; invalid ones are refused with the
field path named; fields meshplane does not generate are refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.model import service
from meshplane.networking import config, errors, serviceentry


def _se(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "ext", "namespace": "sample"},
        "spec": spec,
    }


HTTP = [{"number": 80, "name": "http", "protocol": "HTTP"}]


def test_dns_entry_without_endpoints_resolves_its_hosts() -> None:
    se = serviceentry.parse(_se({"hosts": ["api.example.com"], "ports": HTTP, "resolution": "DNS"}))
    svcs, shards = serviceentry.services([se])
    svc = svcs["api.example.com"]  # type: ignore[index]
    assert svc.resolution is service.Resolution.DNS_LB and svc.mesh_external
    assert svc.registry is service.Registry.EXTERNAL and svc.namespace == "sample"
    (ep,) = shards["api.example.com"][serviceentry.EXTERNAL_CLUSTER]  # type: ignore[index]
    assert (ep.address, dict(ep.ports), ep.tls_mode) == ("api.example.com", {"http": 80}, "")


def test_static_entry_endpoints_ports_labels_locality_and_mesh_internal_mtls() -> None:
    se = serviceentry.parse(
        _se(
            {
                "hosts": ["db.internal"],
                "location": "MESH_INTERNAL",
                "resolution": "STATIC",
                "ports": [
                    {"number": 5432, "name": "tcp-db", "protocol": "TCP", "targetPort": 15432},
                    {"number": 8080, "name": "http", "protocol": "HTTP"},
                ],
                "endpoints": [
                    {
                        "address": "10.0.0.1",
                        "ports": {"http": 9090},
                        "labels": {"version": "v1"},
                        "locality": "us-east/zone1",
                        "network": "n1",
                    }
                ],
            }
        )
    )
    _, shards = serviceentry.services([se])
    (ep,) = shards["db.internal"][serviceentry.EXTERNAL_CLUSTER]  # type: ignore[index]
    assert dict(ep.ports) == {"tcp-db": 15432, "http": 9090}
    assert dict(ep.labels) == {"version": "v1"} and ep.network == "n1"
    assert (ep.locality.region, ep.locality.zone) == ("us-east", "zone1")
    assert ep.tls_mode == "istio"  # MESH_INTERNAL: auto mTLS as for mesh workloads


def test_defaults_are_mesh_external_and_resolution_none() -> None:
    se = serviceentry.parse(_se({"hosts": ["*.example.com"], "ports": HTTP}))
    assert se.mesh_external and se.resolution is service.Resolution.PASSTHROUGH


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"ports": HTTP}, "spec.hosts"),
        ({"hosts": ["*"], "ports": HTTP}, "spec.hosts[0]"),
        ({"hosts": ["bad_host!"], "ports": HTTP}, "spec.hosts[0]"),
        ({"hosts": ["a.com"]}, "spec.ports"),
        ({"hosts": ["a.com"], "ports": HTTP, "resolution": "MAGIC"}, "spec.resolution"),
        ({"hosts": ["a.com"], "ports": HTTP, "location": "NOWHERE"}, "spec.location"),
        (
            {"hosts": ["a.com"], "ports": [{"number": 80, "name": "x", "protocol": "FOO"}]},
            "spec.ports[0].protocol",
        ),
        (
            {"hosts": ["a.com"], "ports": [{"number": 0, "name": "x", "protocol": "TCP"}]},
            "spec.ports[0].number",
        ),
        (
            {"hosts": ["a.com"], "ports": [*HTTP, {"number": 80, "name": "y", "protocol": "TCP"}]},
            "spec.ports[1].number",
        ),
        (
            {"hosts": ["a.com"], "ports": [*HTTP, {"number": 81, "name": "http", "protocol": "TCP"}]},
            "spec.ports[1].name",
        ),
        ({"hosts": ["a.com"], "ports": HTTP, "resolution": "STATIC"}, "spec.endpoints"),
        (
            {"hosts": ["a.com"], "ports": HTTP, "resolution": "STATIC", "endpoints": [{"address": "a.com"}]},
            "spec.endpoints[0].address",
        ),
        ({"hosts": ["a.com"], "ports": HTTP, "endpoints": [{"address": "1.2.3.4"}]}, "spec.endpoints"),
        (
            {"hosts": ["a.com"], "ports": HTTP, "resolution": "DNS", "endpoints": [{"address": "bad host"}]},
            "spec.endpoints[0].address",
        ),
        ({"hosts": ["*.a.com"], "ports": HTTP, "resolution": "DNS"}, "spec.hosts[0]"),
        (
            {
                "hosts": ["a.com"],
                "ports": HTTP,
                "resolution": "STATIC",
                "endpoints": [{"address": "1.2.3.4", "ports": {"nope": 1}}],
            },
            "spec.endpoints[0].ports.nope",
        ),
        (
            {
                "hosts": ["a.com"],
                "ports": HTTP,
                "resolution": "STATIC",
                "endpoints": [{"address": "1.2.3.4", "locality": "a//b"}],
            },
            "spec.endpoints[0].locality",
        ),
        ({"hosts": ["a.com"], "ports": HTTP, "bogus": 1}, "spec.bogus"),
    ],
)
def test_invalid_entries_are_refused_with_the_field_named(spec: dict[str, Any], path: str) -> None:
    with pytest.raises(errors.ConfigError) as e:
        serviceentry.parse(_se(spec))
    assert path in str(e.value)


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"addresses": ["240.0.0.1"]}, "spec.addresses"),
        ({"workloadSelector": {"labels": {"app": "x"}}}, "spec.workloadSelector"),
        ({"subjectAltNames": ["spiffe://x"]}, "spec.subjectAltNames"),
        ({"resolution": "DNS_ROUND_ROBIN"}, "spec.resolution"),
        ({"exportTo": ["."]}, "spec.exportTo"),
        (
            {"resolution": "STATIC", "endpoints": [{"address": "1.2.3.4", "weight": 2}]},
            "spec.endpoints[0].weight",
        ),
    ],
)
def test_unimplemented_fields_are_refused_by_name(extra: dict[str, Any], path: str) -> None:
    with pytest.raises(errors.ConfigError) as e:
        serviceentry.parse(_se({"hosts": ["a.com"], "ports": HTTP, **extra}))
    assert path in str(e.value) and "not supported" in str(e.value)


def test_config_build_keeps_good_entries_and_reports_bad_ones() -> None:
    good = _se({"hosts": ["a.com"], "ports": HTTP, "resolution": "DNS"})
    bad = _se({"hosts": ["b.com"], "ports": HTTP, "resolution": "STATIC"})
    bad["metadata"] = {"name": "bad", "namespace": "sample"}
    cfg, problems = config.build([good, bad])
    assert len(problems) == 1 and "sample/bad" in str(problems[0])
    svcs, shards = cfg.with_entries({}, {})
    assert list(svcs) == ["a.com"] and list(shards) == ["a.com"]
