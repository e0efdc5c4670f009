from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshplane.networking import config, errors
from tests.support import strategies

GW: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "gw", "namespace": "istio-system", "creationTimestamp": "2026-01-02T00:00:00Z"},
    "spec": {
        "selector": {"istio": "eastwestgateway"},
        "servers": [
            {
                "port": {"number": 15443, "protocol": "TLS", "name": "tls"},
                "tls": {"mode": "AUTO_PASSTHROUGH"},
                "hosts": ["*.local"],
            }
        ],
    },
}


def test_bad_objects_are_reported_and_do_not_hide_good_ones() -> None:
    bad = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "bad"}, "spec": {}}
    cfg, problems = config.build([bad, GW, {"kind": "Sidecar"}, "junk"])  # type: ignore[list-item]
    assert [g.name for g in cfg.gateways] == ["gw"]
    assert len(problems) == 3
    assert "Gateway default/bad: spec.servers: is required" in {str(p) for p in problems}


def test_selection_and_binding() -> None:
    older = dict(
        GW, metadata={"name": "a-older", "namespace": "other", "creationTimestamp": "2025-01-01T00:00:00Z"}
    )
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": "istio-system"},
        "spec": {
            "hosts": ["*"],
            "gateways": ["gw", "other/a-older"],
            "tcp": [{"route": [{"destination": {"host": "x"}}]}],
        },
    }
    cfg, problems = config.build([GW, vs, older])
    assert problems == []
    assert [g.key for g in cfg.gateways_for({"istio": "eastwestgateway"})] == [
        "other/a-older",
        "istio-system/gw",
    ]
    assert [v.key for v in cfg.virtual_services_for("istio-system/gw")] == ["istio-system/vs"]
    assert cfg.virtual_services_for("istio-system/nope") == ()


_json = strategies.json_values(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12), max_leaves=8
)
_keys = st.sampled_from(
    [
        "port",
        "number",
        "protocol",
        "hosts",
        "tls",
        "mode",
        "servers",
        "selector",
        "route",
        "destination",
        "host",
        "match",
        "sniHosts",
        "http",
        "uri",
        "prefix",
        "weight",
        "gateways",
    ]
)


@st.composite
def _objects(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["Gateway", "VirtualService"]))
    spec = draw(st.dictionaries(_keys, _json, max_size=5))
    return {
        "apiVersion": draw(
            st.sampled_from(["networking.istio.io/v1", "networking.istio.io/v1beta1", "x/y", 3])
        ),
        "kind": kind,
        "metadata": draw(st.sampled_from([{"name": "n", "namespace": "ns"}, {"name": 5}, {}, None])),
        "spec": draw(st.one_of(st.just(spec), _json)),
    }


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_objects(), max_size=4))
def test_any_input_gives_config_or_config_errors(objs: list[Any]) -> None:
    cfg, problems = config.build(objs)
    assert len(cfg.gateways) + len(cfg.virtual_services) + len(problems) == len(objs)
    assert all(isinstance(p, errors.ConfigError) for p in problems)
