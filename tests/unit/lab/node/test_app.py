"""lab.node.app: bad node options are refused with a message naming the option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshplane.lab.node import app


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
