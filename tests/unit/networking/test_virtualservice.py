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
    with pytest.raises(
        errors.ConfigError, match=r"spec\.hosts\[0\]: wildcard host \* is not allowed .* mesh"
    ):
        virtualservice.parse(no_gateways)  # Istio's validation
    no_gateways["spec"]["hosts"] = ["istiod"]
    with pytest.raises(errors.ConfigError, match=r"spec\.tls: TLS routes for sidecars .* not supported"):
        virtualservice.parse(no_gateways)  # sidecars would ignore it: refused, by path
    no_gateways["spec"]["http"] = no_gateways["spec"].pop("tls")
    del no_gateways["spec"]["http"][0]["match"]
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


@pytest.mark.parametrize(
    ("route", "path"),
    [
        ({"delegate": {"name": "x"}}, "spec.http[0].delegate"),
        ({"route": [{"destination": {"host": "a"}}], "mirrorPercent": 5}, "spec.http[0].mirrorPercent"),
        (
            {"match": [{"statPrefix": "x"}], "route": [{"destination": {"host": "a"}}]},
            "spec.http[0].match[0].statPrefix",
        ),
        (
            {
                "route": [{"destination": {"host": "a"}}],
                "retries": {"attempts": 2, "retryRemoteLocalities": True},
            },
            "spec.http[0].retries.retryRemoteLocalities",
        ),
        (
            {"route": [{"destination": {"host": "a"}}], "fault": {"abort": {"grpcStatus": "UNAVAILABLE"}}},
            "spec.http[0].fault.abort.grpcStatus",
        ),
        (
            {"route": [{"destination": {"host": "a"}}], "fault": {"delay": {"exponentialDelay": "1s"}}},
            "spec.http[0].fault.delay.exponentialDelay",
        ),
        ({"redirect": {"uri": "/x", "derivePort": "FROM_REQUEST_PORT"}}, "spec.http[0].redirect.derivePort"),
        (
            {"route": [{"destination": {"host": "a"}}], "corsPolicy": {"allowOrigin": ["*"]}},
            "spec.http[0].corsPolicy.allowOrigin",
        ),
    ],
)
def test_istio_fields_meshplane_does_not_generate_are_refused_not_ignored(
    route: dict[str, Any], path: str
) -> None:
    with pytest.raises(errors.ConfigError) as e:
        virtualservice.parse(_http_vs(route))
    assert e.value.path == path
    assert "not supported" in str(e.value)


@pytest.mark.parametrize(
    ("route", "path", "text"),
    [
        (
            {"redirect": {"uri": "/x"}, "route": [{"destination": {"host": "a"}}]},
            "spec.http[0]",
            "exactly one of",
        ),
        ({"match": [{"uri": {"prefix": "/"}}]}, "spec.http[0]", "exactly one of"),
        ({"redirect": {"uri": "/x"}, "rewrite": {"uri": "/y"}}, "spec.http[0].rewrite", "needs route"),
        ({"redirect": {"redirectCode": 305}}, "spec.http[0].redirect.redirectCode", "must be one of"),
        (
            {"match": [{"headers": {"End-User": {"exact": "j"}}}], "route": [{"destination": {"host": "a"}}]},
            "spec.http[0].match[0].headers.End-User",
            "lowercase",
        ),
        (
            {"route": [{"destination": {"host": "a"}}], "fault": {"abort": {"percentage": {"value": 50}}}},
            "spec.http[0].fault.abort.httpStatus",
            "is required",
        ),
        (
            {
                "route": [{"destination": {"host": "a"}}],
                "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 150}}},
            },
            "spec.http[0].fault.abort.percentage.value",
            "0-100",
        ),
        (
            {"route": [{"destination": {"host": "a"}}], "retries": {"attempts": 3, "perTryTimeout": "fast"}},
            "spec.http[0].retries.perTryTimeout",
            "duration",
        ),
        (
            {"route": [{"destination": {"host": "a"}}], "mirrorPercentage": {"value": 5}},
            "spec.http[0].mirrorPercentage",
            "needs mirror",
        ),
        (
            {
                "route": [{"destination": {"host": "a"}}],
                "rewrite": {"uriRegexRewrite": {"match": "(", "rewrite": "x"}},
            },
            "spec.http[0].rewrite.uriRegexRewrite.match",
            "regular expression",
        ),
    ],
)
def test_invalid_http_routes_are_refused_by_path(route: dict[str, Any], path: str, text: str) -> None:
    with pytest.raises(errors.ConfigError) as e:
        virtualservice.parse(_http_vs(route))
    assert e.value.path == path
    assert text in e.value.problem


def test_every_http_field_is_parsed() -> None:
    vs = virtualservice.parse(
        _http_vs(
            {
                "name": "all",
                "match": [
                    {
                        "uri": {"regex": "/a.*"},
                        "method": {"exact": "GET"},
                        "headers": {"end-user": {"exact": "jason"}, "x-any": {}},
                        "withoutHeaders": {"x-skip": {"prefix": "y"}},
                        "queryParams": {"v": {"exact": "2"}},
                        "ignoreUriCase": True,
                        "sourceLabels": {"app": "sleep"},
                        "sourceNamespace": "sample",
                    }
                ],
                "route": [
                    {
                        "destination": {"host": "helloworld", "subset": "v1"},
                        "weight": 90,
                        "headers": {"request": {"set": {"x-a": "1"}}},
                    },
                    {
                        "destination": {"host": "helloworld", "subset": "v2", "port": {"number": 5000}},
                        "weight": 10,
                    },
                ],
                "rewrite": {"uri": "/b", "authority": "other"},
                "timeout": "2s",
                "retries": {"attempts": 3, "perTryTimeout": "500ms", "retryOn": "5xx,503"},
                "fault": {
                    "delay": {"fixedDelay": "1s", "percent": 10},
                    "abort": {"httpStatus": 503, "percentage": {"value": 50}},
                },
                "mirror": {"host": "mirror"},
                "mirrorPercentage": {"value": 25.5},
                "headers": {
                    "request": {"add": {"x-b": "2"}, "remove": ["x-c"]},
                    "response": {"set": {"x-d": "4"}},
                },
                "corsPolicy": {
                    "allowOrigins": [{"exact": "https://a.example"}],
                    "allowMethods": ["GET"],
                    "maxAge": "1m",
                    "allowCredentials": False,
                },
            }
        )
    )
    (r,) = vs.http
    (m,) = r.matches
    V = virtualservice
    assert m.uri == V.StringMatch(V.MatchKind.REGEX, "/a.*") and m.method == V.StringMatch(
        V.MatchKind.EXACT, "GET"
    )
    assert m.headers == (
        V.HeaderMatch("end-user", V.StringMatch(V.MatchKind.EXACT, "jason")),
        V.HeaderMatch("x-any", None),
    )
    assert m.selects_source({"app": "sleep", "x": "y"}, "sample") and not m.selects_source(
        {"app": "sleep"}, "other"
    )
    assert r.routes[0].destination == V.Destination("helloworld.sample.svc.cluster.local", 0, "v1")
    assert r.routes[0].headers.request.set == (("x-a", "1"),)
    assert r.rewrite == V.Rewrite("/b", "other") and r.timeout_seconds == 2.0
    assert r.retries == V.Retries(3, 0.5, "5xx,503")
    assert r.fault == V.Fault(1.0, 10.0, 503, 50.0)
    assert r.mirrors == (V.Mirror(V.Destination("mirror.sample.svc.cluster.local"), 25.5),)
    assert r.headers.request.remove == ("x-c",) and r.headers.response.set == (("x-d", "4"),)
    assert r.cors == V.CorsPolicy(
        (V.StringMatch(V.MatchKind.EXACT, "https://a.example"),), ("GET",), (), (), 60.0, False
    )
