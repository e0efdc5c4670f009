"""PeerAuthentication: validation naming the field, and Istio's inheritance (ComposePeerAuthentication)."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.model import crfields
from meshplane.model.mesh import MtlsMode
from meshplane.policy import config, peerauthn

ROOT = "istio-system"


def pa(
    name: str,
    ns: str,
    mode: str | None = None,
    labels: dict[str, str] | None = None,
    ports: dict[str, Any] | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if labels:
        spec["selector"] = {"matchLabels": labels}
    if ports is not None:
        spec["portLevelMtls"] = ports
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
        "spec": spec,
    }


def effective(objs: list[dict[str, Any]], ns: str = "sample", labels: dict[str, str] | None = None) -> Any:
    cfg, problems = config.build(objs)
    assert problems == []
    return cfg.mtls(ROOT, ns, labels or {"app": "hello"})


def test_no_policy_is_permissive() -> None:
    assert effective([]) == peerauthn.Effective(MtlsMode.PERMISSIVE)


def test_levels_apply_mesh_then_namespace_then_workload_and_unset_inherits() -> None:
    mesh = pa("default", ROOT, "STRICT")
    assert effective([mesh]).mode is MtlsMode.STRICT
    ns = pa("default", "sample", "PERMISSIVE")
    assert effective([mesh, ns]).mode is MtlsMode.PERMISSIVE
    assert effective([mesh, ns], ns="other").mode is MtlsMode.STRICT  # another namespace: mesh level
    wl = pa("hello", "sample", "DISABLE", {"app": "hello"})
    assert effective([mesh, ns, wl]).mode is MtlsMode.DISABLE
    assert effective([mesh, ns, wl], labels={"app": "other"}).mode is MtlsMode.PERMISSIVE
    unset_ns = pa("default", "sample", "UNSET")
    assert effective([mesh, unset_ns]).mode is MtlsMode.STRICT


def test_port_level_overrides_and_unset_port_inherits_the_workload_mode() -> None:
    wl = pa("hello", "sample", "STRICT", {"app": "hello"}, {"9000": {"mode": "DISABLE"}, "9001": {}})
    eff = effective([wl])
    assert (eff.for_port(5000), eff.for_port(9000), eff.for_port(9001)) == (
        MtlsMode.STRICT,
        MtlsMode.DISABLE,
        MtlsMode.STRICT,
    )


def test_oldest_wins_and_root_namespace_selectors_are_ignored() -> None:
    old = pa("a-old", "sample", "STRICT", created="2026-01-01T00:00:00Z")
    new = pa("b-new", "sample", "DISABLE", created="2026-02-01T00:00:00Z")
    assert effective([new, old]).mode is MtlsMode.STRICT
    root_selecting = pa("sel", ROOT, "DISABLE", {"app": "hello"})
    assert effective([root_selecting]).mode is MtlsMode.PERMISSIVE


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (pa("x", "sample", "SOMETIMES"), "spec.mtls.mode"),
        (pa("x", "sample", "STRICT", ports={"9000": {"mode": "STRICT"}}), "spec.portLevelMtls"),
        (pa("x", "sample", "STRICT", {"app": "a"}, {"0": {"mode": "STRICT"}}), "spec.portLevelMtls.0"),
        (pa("x", "sample", "STRICT", {"app": "a"}, {"http": {"mode": "STRICT"}}), "spec.portLevelMtls.http"),
        (pa("x", "sample", "STRICT", {"app": "a*"}), "spec.selector.matchLabels.app"),
        ({**pa("x", "sample"), "spec": {"mtls": {"mode": "STRICT"}, "mtlss": {}}}, "spec.mtlss"),
        ({**pa("x", "sample"), "apiVersion": "security.istio.io/v2"}, "apiVersion"),
    ],
)
def test_invalid_objects_are_refused_naming_the_field(obj: dict[str, Any], path: str) -> None:
    with pytest.raises(crfields.ConfigError) as err:
        peerauthn.parse(obj)
    assert err.value.path == path
    assert err.value.ref == "PeerAuthentication sample/x"
    cfg, problems = config.build([obj, pa("good", "sample", "STRICT")])
    assert [p.path for p in problems] == [path]
    assert [p.name for p in cfg.peer_authentications] == ["good"]
