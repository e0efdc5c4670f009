"""Bad input never crashes the lab: its state file, node options, volume specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from meshplane.lab import errors, launcher
from meshplane.lab.node import app, volumes

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(json_values)
def test_a_junk_state_file_loads_as_an_empty_or_partial_lab(tmp_path: Path, doc: Any) -> None:
    paths = launcher.LabPaths(tmp_path)
    paths.state.write_text(json.dumps(doc))
    state = launcher.load_state(paths)
    assert 0 <= state.base <= 254
    assert all(isinstance(p.pid, int) for procs in state.procs.values() for p in procs.values())


def test_state_round_trip(tmp_path: Path) -> None:
    paths = launcher.LabPaths(tmp_path)
    state = launcher.LabState(
        100, {"cluster1": {"api": launcher.Proc(123, 456, "https://127.0.0.1:4000", 4000)}}
    )
    launcher.save_state(paths, state)
    again = launcher.load_state(paths)
    assert again.base == 100 and again.procs["cluster1"]["api"] == state.procs["cluster1"]["api"]
    assert [p.pod_cidr for p in again.plans()] == ["127.100.1.0/24", "127.100.2.0/24"]
    with pytest.raises(ValueError, match="out of range"):
        launcher.plans(255)


def options(**kw: Any) -> app.NodeOptions:
    base: dict[str, Any] = {
        "cluster": "cluster1",
        "kubeconfig": Path("k"),
        "context": None,
        "dir": Path("d"),
        "pod_cidr": "127.0.1.0/24",
        "local_cidr": "127.1.1.0/24",
        "lb_cidr": "127.0.3.0/24",
        "lb_claims": Path("c"),
        "region": "r",
        "zone": "z",
    }
    return app.NodeOptions(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cluster": "a/b"}, "invalid cluster name"),
        ({"pod_cidr": "10.0.1.0/24"}, "not an IPv4 loopback range"),
        ({"local_cidr": "127.0.1.0/24"}, "overlap"),
        ({"local_cidr": "127.1.0.0/16"}, "differ in size"),
        ({"lb_cidr": "garbage"}, "invalid CIDR"),
        ({"backoff_initial": 0}, "backoff"),
        ({"termination_delay": -1}, "termination delay"),
    ],
)
def test_bad_node_options_are_named(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        app.validate(options(**kw))
    app.validate(options())


KINDS = ["emptyDir", "configMap", "secret", "downwardAPI", "projected", "hostPath"]
source_values = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "secretName": json_values,
        "items": st.lists(
            st.fixed_dictionaries({}, optional={"key": json_values, "path": json_values, "mode": json_values})
            | json_values,
            max_size=3,
        )
        | json_values,
        "optional": json_values,
        "defaultMode": json_values,
        "sources": st.lists(
            st.dictionaries(
                st.sampled_from(["configMap", "secret", "serviceAccountToken", "downwardAPI"]),
                json_values,
                max_size=2,
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)
junk_volume = st.fixed_dictionaries(
    {"name": st.just("v") | json_values}, optional={k: source_values | json_values for k in KINDS}
)


@settings(max_examples=300, deadline=None)
@given(st.lists(junk_volume | json_values, max_size=4))
@example([{"name": "v", "projected": {"sources": 5}}])
@example(
    [{"name": "v", "downwardAPI": {"items": 7}}, {"name": "w", "secret": {"secretName": "s", "items": {}}}]
)
def test_junk_volumes_raise_only_lab_errors(vols: list[Any]) -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"volumes": vols}}
    src = volumes.Sources(lambda ns, n: None, lambda ns, n: None)
    try:
        volumes.render(pod, src)
        volumes.token_wants(pod)
    except errors.LabError:
        pass
