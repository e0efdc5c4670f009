from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshplane.xds import errors, naming

HOST = "helloworld.sample.svc.cluster.local"


def test_istio_cluster_names() -> None:
    assert naming.outbound_cluster(HOST, 5000) == "outbound|5000||helloworld.sample.svc.cluster.local"
    assert naming.outbound_cluster(HOST, 5000, "v1") == "outbound|5000|v1|helloworld.sample.svc.cluster.local"
    assert naming.inbound_cluster(5000) == "inbound|5000||"
    assert naming.sni_name(HOST, 5000) == "outbound_.5000_._.helloworld.sample.svc.cluster.local"


def test_parse_back_both_forms() -> None:
    parsed = naming.parse_cluster("outbound|5000||helloworld.sample.svc.cluster.local")
    assert (parsed.direction, parsed.port, parsed.subset, parsed.host) == (
        naming.Direction.OUTBOUND,
        5000,
        "",
        HOST,
    )
    assert str(parsed) == "outbound|5000||helloworld.sample.svc.cluster.local"
    sni = naming.parse_cluster("outbound_.15012_._.istiod.istio-system.svc.cluster.local")
    assert (sni.port, sni.host, sni.sni_form) == (15012, "istiod.istio-system.svc.cluster.local", True)
    assert str(sni) == "outbound_.15012_._.istiod.istio-system.svc.cluster.local"
    inbound = naming.parse_cluster("inbound|8080||")
    assert (inbound.direction, inbound.port, inbound.host) == (naming.Direction.INBOUND, 8080, "")
    assert naming.outbound_host("outbound|5000||" + HOST) == HOST
    assert naming.outbound_host("inbound|5000||") is None
    assert naming.outbound_host("garbage") is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("outbound|5000|helloworld", "DIRECTION|PORT|SUBSET|HOST"),
        ("sideways|5000||x.y", "direction"),
        ("outbound|99999||x.y", "port"),
        ("outbound|abc||x.y", "port"),
        ("outbound|80||", "needs a host"),
        ("nonsense", "DIRECTION"),
    ],
)
def test_bad_names_say_why(name: str, problem: str) -> None:
    with pytest.raises(errors.ResourceNameError, match=problem):
        naming.parse_cluster(name)


@given(st.text(max_size=80))
def test_parse_never_fails_otherwise(text: str) -> None:
    try:
        parsed = naming.parse_cluster(text)
    except errors.ResourceNameError:
        return
    assert naming.parse_cluster(str(parsed)) == parsed


@given(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}\.[a-z][a-z0-9-]{0,10}\.svc\.cluster\.local", fullmatch=True),
    st.integers(1, 65535),
    st.from_regex(r"[a-z0-9-]{0,6}", fullmatch=True),
)
def test_round_trip(host: str, port: int, subset: str) -> None:
    for name in (naming.outbound_cluster(host, port, subset), naming.sni_name(host, port, subset)):
        parsed = naming.parse_cluster(name)
        assert (parsed.host, parsed.port, parsed.subset) == (host, port, subset)
        assert str(parsed) == name


def test_route_and_listener_names() -> None:
    assert naming.outbound_route() == "15001"
    assert naming.gateway_http_route(8080) == "http.8080"
    assert naming.listener("127.0.1.5", 15012) == "127.0.1.5_15012"
