"""lab.launcher: the lab's state file round-trips, and a junk one never crashes the lab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from meshplane.lab import launcher
from tests.support import strategies

json_values = strategies.json_values()


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


def test_network_mode_choice() -> None:
    from meshplane.lab import errors

    ok, missing = (lambda: ""), (lambda: "no CAP_NET_ADMIN (run as root)")
    assert launcher.choose_mode("auto", None, ok) == ("netns", "")
    assert launcher.choose_mode("auto", None, missing) == ("loopback", "no CAP_NET_ADMIN (run as root)")
    assert launcher.choose_mode("auto", 100, ok) == ("loopback", "")  # an address base is loopback's
    assert launcher.choose_mode("loopback", None, ok) == ("loopback", "")
    with pytest.raises(errors.LabError, match="cannot give pods their own network: no CAP_NET_ADMIN"):
        launcher.choose_mode("netns", None, missing)
