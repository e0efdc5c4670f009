from __future__ import annotations

import copy
from typing import Any

import pytest

from meshplane.networking import errors, hosts, virtualservice

BASE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "istiod-vs", "namespace": "istio-system"},
    "spec": {
        "hosts": ["*"],
        "gateways": ["istiod-gateway"],
        "tls": [
            {
                "match": [{"port": 15017, "sniHosts": ["*"]}],
                "route": [
                    {
                        "destination": {
                            "host": "istiod.istio-system.svc.cluster.local",
                            "port": {"number": 443},
                        }
                    }
                ],
            }
        ],
    },
}


def test_parse_and_resolve() -> None:
    vs = virtualservice.parse(BASE)
    assert vs.gateways == ("istio-system/istiod-gateway",)
    (route,) = vs.tls
    assert route.matches[0] == virtualservice.L4Match(("*",), 15017)
    assert route.routes[0].destination == virtualservice.Destination(
        "istiod.istio-system.svc.cluster.local", 443
    )


def test_host_and_gateway_resolution_as_istio() -> None:
    assert virtualservice.resolve_host("istiod", "istio-system") == "istiod.istio-system.svc.cluster.local"
    assert (
        virtualservice.resolve_host("istiod.istio-system", "x") == "istiod.istio-system"
    )  # has a dot: as is
    assert virtualservice.resolve_host("*", "x") == "*"
    assert virtualservice.resolve_host("10.0.0.1", "x") == "10.0.0.1"
    assert virtualservice.resolve_gateway("gw", "ns") == "ns/gw"
    assert virtualservice.resolve_gateway("other/gw", "ns") == "other/gw"
    assert virtualservice.resolve_gateway("gw.other.svc.cluster.local", "ns") == "other/gw"
    assert virtualservice.resolve_gateway("mesh", "ns") == "mesh"
    no_gateways = copy.deepcopy(BASE)
    del no_gateways["spec"]["gateways"]
    assert virtualservice.parse(no_gateways).gateways == ("mesh",)


def test_http_routes() -> None:
    obj = copy.deepcopy(BASE)
    obj["spec"]["http"] = [
        {
            "name": "r",
            "match": [{"uri": {"prefix": "/a"}, "authority": {"exact": "x.com"}, "port": 80}],
            "route": [
                {"destination": {"host": "a"}, "weight": 75},
                {"destination": {"host": "b"}, "weight": 25},
            ],
            "timeout": "250ms",
        }
    ]
    (route,) = virtualservice.parse(obj).http
    assert route.timeout_seconds == 0.25
    assert route.matches[0].uri == virtualservice.StringMatch(virtualservice.MatchKind.PREFIX, "/a")
    assert [r.weight for r in route.routes] == [75, 25]


def _tls_route(o: dict[str, Any]) -> dict[str, Any]:
    route: dict[str, Any] = o["spec"]["tls"][0]["route"][0]
    return route


def _http(**route: Any) -> Any:
    return lambda o: o["spec"].update(http=[{"route": [{"destination": {"host": "a"}}], **route}])


DEST_A = {"destination": {"host": "a"}}


@pytest.mark.parametrize(
    ("mutate", "where", "problem"),
    [
        (lambda o: o["spec"].pop("hosts"), "spec.hosts", "is required"),
        (lambda o: o["spec"].update(hosts=["a b"]), "spec.hosts[0]", "not a DNS name"),
        (
            lambda o: o["spec"]["tls"][0]["match"][0].pop("sniHosts"),
            "spec.tls[0].match[0].sniHosts",
            "required",
        ),
        (lambda o: o["spec"]["tls"][0].pop("match"), "spec.tls[0].match", "is required"),
        (
            lambda o: _tls_route(o)["destination"].pop("host"),
            "spec.tls[0].route[0].destination.host",
            "required",
        ),
        (
            lambda o: _tls_route(o)["destination"]["port"].update(number=0),
            "spec.tls[0].route[0].destination.port.number",
            "1-65535",
        ),
        (lambda o: _tls_route(o).update(weight=101), "spec.tls[0].route[0].weight", "0-100"),
        (_http(timeout="soon"), "spec.http[0].timeout", "duration"),
        (_http(match=[{"uri": {"regex": "("}}]), "spec.http[0].match[0].uri.regex", "regular expression"),
        (_http(match=[{"uri": {"exact": "/", "prefix": "/"}}]), "spec.http[0].match[0].uri", "exactly one"),
        (
            _http(route=[{**DEST_A, "weight": 60}, {"destination": {"host": "b"}, "weight": 60}]),
            "spec.http[0].route",
            "add up to 100",
        ),
        (lambda o: o["spec"].update(tcp="x"), "spec.tcp", "must be a list"),
    ],
)
def test_errors_name_the_field(mutate: Any, where: str, problem: str) -> None:
    obj = copy.deepcopy(BASE)
    mutate(obj)
    with pytest.raises(errors.ConfigError) as info:
        virtualservice.parse(obj)
    assert (info.value.path, problem in info.value.problem) == (where, True), str(info.value)


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("foo.com", "foo.com", True),
        ("foo.com", "bar.com", False),
        ("*.com", "foo.com", True),
        ("bar.com", "*.com", True),
        ("*.foo.com", "foo.com", False),
        ("*", "foo.com", True),
        ("*", "*.com", True),
        ("*.a.com", "*.com", True),
        ("*.a.com", "*.b.com", False),
    ],
)
def test_host_overlap_as_istio(a: str, b: str, overlap: bool) -> None:
    assert hosts.matches(a, b) is overlap


def _http_vs(route: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "hw", "namespace": "sample"},
        "spec": {"hosts": ["helloworld"], "http": [route]},
    }


@pytest.mark.parametrize(
    ("route", "path"),
    [
        ({"route": [{"destination": {"host": "a"}}], "bogus": 1}, "spec.http[0].bogus"),
        (
            {"match": [{"uri": {"prefix": "/"}, "colour": "red"}], "route": [{"destination": {"host": "a"}}]},
            "spec.http[0].match[0].colour",
        ),
        (
            {"match": [{"uri": {"prefx": "/"}}], "route": [{"destination": {"host": "a"}}]},
            "spec.http[0].match[0].uri.prefx",
        ),
        (
            {"route": [{"destination": {"host": "a", "subst": "v1"}}]},
            "spec.http[0].route[0].destination.subst",
        ),
        (
            {"route": [{"destination": {"host": "a", "port": {"num": 80}}}]},
            "spec.http[0].route[0].destination.port.num",
        ),
    ],
)
def test_unknown_fields_are_refused_with_their_path(route: dict[str, Any], path: str) -> None:
    with pytest.raises(errors.ConfigError) as e:
        virtualservice.parse(_http_vs(route))
    assert e.value.path == path
    assert "unknown field" in str(e.value)


def test_unknown_top_level_and_l4_fields_are_refused() -> None:
    obj = copy.deepcopy(BASE)
    obj["spec"]["httpRoutes"] = []
    with pytest.raises(errors.ConfigError, match=r"spec\.httpRoutes: unknown field"):
        virtualservice.parse(obj)
    obj = copy.deepcopy(BASE)
    obj["spec"]["tls"][0]["match"][0]["sni"] = ["x"]
    with pytest.raises(errors.ConfigError, match=r"spec\.tls\[0\]\.match\[0\]\.sni: unknown field"):
        virtualservice.parse(obj)


def test_istio_fields_meshplane_does_not_generate_are_refused_not_ignored() -> None:
    with pytest.raises(errors.ConfigError) as e:
        virtualservice.parse(_http_vs({"delegate": {"name": "x"}}))
    assert e.value.path == "spec.http[0].delegate"
    assert "not supported" in str(e.value)
