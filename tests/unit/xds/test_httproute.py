"""VirtualServices for sidecars: every HTTPRoute field's Envoy output in the route table a captured
sidecar receives (the builder gateways share), selection and precedence, and Envoy accepting it."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2

from meshplane.networking import config as networking_config
from meshplane.xds import generator, resources
from tests.support import envoyproc
from tests.support import meshdata as md
from tests.unit.xds.test_envoy_validate import _bootstrap, _decode, _route_holder

HW = "helloworld.sample.svc.cluster.local"
HELLO = md.svc(vips={"cluster1": ["10.96.0.10"]})
WEB = md.svc("web", ports=(("http", 80), ("http-alt", 5000)), vips={"cluster1": ["10.96.0.11"]})
CAPTURED = {"INTERCEPTION_MODE": "REDIRECT"}


def _vs(
    http: list[dict[str, Any]], name: str = "hw", namespace: str = "sample", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": ["helloworld"], "http": http, **spec},
    }


DR = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "hw", "namespace": "sample"},
    "spec": {
        "host": "helloworld",
        "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}],
    },
}


def _table(*docs: dict[str, Any], port: int = 5000, proxy=None) -> route_pb2.RouteConfiguration:  # type: ignore[no-untyped-def]
    cfg, problems = networking_config.build(docs)
    assert problems == []
    c = md.ctx([HELLO, WEB], networking=cfg)
    g = generator.Generator()
    p = proxy or md.proxy(metadata=CAPTURED)
    (table,) = _decode(
        g.generate(resources.TYPE_RDS, p, c, frozenset({str(port)})), route_pb2.RouteConfiguration
    )
    return table


def _routes(*docs: dict[str, Any], host: str = HW, port: int = 5000, proxy=None) -> list[rc.Route]:  # type: ignore[no-untyped-def]
    table = _table(*docs, port=port, proxy=proxy)
    (vh,) = [v for v in table.virtual_hosts if v.name == f"{host}:{port}"]
    return list(vh.routes)


def test_weighted_subsets_and_header_match() -> None:
    routes = _routes(
        _vs(
            [
                {
                    "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                    "route": [{"destination": {"host": "helloworld", "subset": "v2"}}],
                },
                {
                    "route": [
                        {"destination": {"host": "helloworld", "subset": "v1"}, "weight": 90},
                        {"destination": {"host": "helloworld", "subset": "v2"}, "weight": 10},
                    ]
                },
            ]
        ),
        DR,
    )
    assert len(routes) == 2
    jason, split = routes
    (h,) = jason.match.headers
    assert (h.name, h.string_match.exact) == ("end-user", "jason")
    assert jason.route.cluster == f"outbound|5000|v2|{HW}"
    assert [(c.name, c.weight.value) for c in split.route.weighted_clusters.clusters] == [
        (f"outbound|5000|v1|{HW}", 90),
        (f"outbound|5000|v2|{HW}", 10),
    ]
    assert split.match.prefix == "/"
    assert split.route.retry_policy.num_retries.value == 2  # Istio's default retries stay


def test_every_match_field() -> None:
    (r,) = _routes(
        _vs(
            [
                {
                    "match": [
                        {
                            "uri": {"prefix": "/api"},
                            "ignoreUriCase": True,
                            "scheme": {"exact": "http"},
                            "method": {"regex": "GET|HEAD"},
                            "authority": {"prefix": "helloworld"},
                            "headers": {"x-a": {"exact": "1"}, "x-present": {}},
                            "withoutHeaders": {"x-b": {"prefix": "no"}},
                            "queryParams": {"q": {"exact": "1"}, "flag": {}},
                            "port": 5000,
                            "sourceNamespace": "sample",
                        }
                    ],
                    "route": [{"destination": {"host": "helloworld"}}],
                }
            ]
        )
    )
    m = r.match
    assert m.prefix == "/api" and m.case_sensitive.value is False
    hdrs = {h.name: h for h in m.headers}
    assert hdrs[":scheme"].string_match.exact == "http"
    assert hdrs[":method"].string_match.safe_regex.regex == "GET|HEAD"
    assert hdrs[":authority"].string_match.prefix == "helloworld"
    assert hdrs["x-a"].string_match.exact == "1" and hdrs["x-present"].present_match
    assert hdrs["x-b"].invert_match and hdrs["x-b"].string_match.prefix == "no"
    qs = {q.name: q for q in m.query_parameters}
    assert qs["q"].string_match.exact == "1" and qs["flag"].present_match
    assert r.route.cluster == f"outbound|5000||{HW}"


def test_uri_exact_and_regex() -> None:
    exact, regex = _routes(
        _vs(
            [
                {
                    "match": [{"uri": {"exact": "/hello"}}, {"uri": {"regex": "/h.*"}}],
                    "route": [{"destination": {"host": "helloworld"}}],
                },
            ]
        )
    )
    assert exact.match.path == "/hello" and regex.match.safe_regex.regex == "/h.*"


def test_source_labels_namespace_and_port_select_per_proxy() -> None:
    vs = _vs(
        [
            {
                "match": [{"sourceLabels": {"app": "sleep"}}],
                "route": [{"destination": {"host": "helloworld", "subset": "v2"}}],
            },
            {
                "match": [{"sourceNamespace": "other"}],
                "route": [{"destination": {"host": "helloworld", "subset": "v1"}}],
            },
            {"match": [{"port": 9999}], "route": [{"destination": {"host": "helloworld", "subset": "v1"}}]},
        ]
    )
    sleep = md.proxy(labels={"app": "sleep"}, metadata=CAPTURED)
    other = md.proxy("127.0.1.11", pod="x", labels={"app": "x"}, metadata=CAPTURED)
    assert [r.route.cluster for r in _routes(vs, DR, proxy=sleep)] == [f"outbound|5000|v2|{HW}"]
    # nothing applies to this proxy: the service's default route
    assert [r.route.cluster for r in _routes(vs, DR, proxy=other)] == [f"outbound|5000||{HW}"]


def test_redirect_direct_response_and_rewrite() -> None:
    redirect, direct, rewrite, regex = _routes(
        _vs(
            [
                {
                    "match": [{"uri": {"exact": "/old"}}],
                    "redirect": {
                        "uri": "/new",
                        "authority": "web",
                        "port": 8080,
                        "scheme": "https",
                        "redirectCode": 308,
                    },
                },
                {
                    "match": [{"uri": {"exact": "/gone"}}],
                    "directResponse": {"status": 410, "body": {"string": "gone"}},
                },
                {
                    "match": [{"uri": {"prefix": "/v1/"}}],
                    "rewrite": {"uri": "/", "authority": "helloworld.internal"},
                    "route": [{"destination": {"host": "helloworld"}}],
                },
                {
                    "rewrite": {"uriRegexRewrite": {"match": "^/x/(.*)", "rewrite": "/\\1"}},
                    "route": [{"destination": {"host": "helloworld"}}],
                },
            ]
        )
    )
    rd = redirect.redirect
    assert (rd.path_redirect, rd.host_redirect, rd.port_redirect, rd.scheme_redirect) == (
        "/new",
        "web",
        8080,
        "https",
    )
    assert rd.response_code == rc.RedirectAction.PERMANENT_REDIRECT
    assert (direct.direct_response.status, direct.direct_response.body.inline_string) == (410, "gone")
    assert (rewrite.route.prefix_rewrite, rewrite.route.host_rewrite_literal) == ("/", "helloworld.internal")
    assert (regex.route.regex_rewrite.pattern.regex, regex.route.regex_rewrite.substitution) == (
        "^/x/(.*)",
        "/\\1",
    )


def test_timeout_and_retries() -> None:
    custom, off, codes_only = _routes(
        _vs(
            [
                {
                    "match": [{"uri": {"prefix": "/a"}}],
                    "timeout": "1.5s",
                    "retries": {
                        "attempts": 5,
                        "perTryTimeout": "200ms",
                        "retryOn": "gateway-error,connect-failure",
                    },
                    "route": [{"destination": {"host": "helloworld"}}],
                },
                {
                    "match": [{"uri": {"prefix": "/b"}}],
                    "retries": {"attempts": 0},
                    "route": [{"destination": {"host": "helloworld"}}],
                },
                {
                    "retries": {"attempts": 2, "retryOn": "503,5xx"},
                    "route": [{"destination": {"host": "helloworld"}}],
                },
            ]
        )
    )
    assert custom.route.timeout.ToMilliseconds() == 1500
    rp = custom.route.retry_policy
    assert (rp.num_retries.value, rp.per_try_timeout.ToMilliseconds(), rp.retry_on) == (
        5,
        200,
        "gateway-error,connect-failure",
    )
    assert list(rp.retriable_status_codes) == []
    assert not off.route.HasField("retry_policy")
    rp3 = codes_only.route.retry_policy
    assert rp3.retry_on == "5xx,retriable-status-codes" and list(rp3.retriable_status_codes) == [503]
    assert off.route.timeout.ToMilliseconds() == 0  # unset: no timeout, as Istio


def test_fault_mirror_headers_and_cors() -> None:
    (r,) = _routes(
        _vs(
            [
                {
                    "fault": {
                        "delay": {"fixedDelay": "2s", "percentage": {"value": 12.5}},
                        "abort": {"httpStatus": 503, "percentage": {"value": 50}},
                    },
                    "mirror": {"host": "web", "port": {"number": 80}},
                    "mirrorPercentage": {"value": 25},
                    "headers": {
                        "request": {"set": {"x-set": "1"}, "add": {"x-add": "2"}, "remove": ["x-drop"]},
                        "response": {"set": {"x-resp": "3"}, "remove": ["server"]},
                    },
                    "corsPolicy": {
                        "allowOrigins": [{"exact": "https://a.example"}, {"regex": ".*\\.b\\.example"}],
                        "allowMethods": ["GET", "POST"],
                        "allowHeaders": ["x-h"],
                        "exposeHeaders": ["x-e"],
                        "maxAge": "24h",
                        "allowCredentials": True,
                    },
                    "route": [
                        {
                            "destination": {"host": "helloworld"},
                            "headers": {"request": {"set": {"x-dest": "hw"}}},
                        }
                    ],
                }
            ]
        )
    )
    fault = fault_pb2.HTTPFault()
    assert r.typed_per_filter_config["envoy.filters.http.fault"].Unpack(fault)
    assert (
        fault.delay.fixed_delay.seconds,
        fault.delay.percentage.numerator,
        fault.delay.percentage.denominator,
    ) == (2, 125000, 2)
    assert (fault.abort.http_status, fault.abort.percentage.numerator) == (503, 500000)
    (mirror,) = r.route.request_mirror_policies
    assert mirror.cluster == "outbound|80||web.sample.svc.cluster.local"
    assert mirror.runtime_fraction.default_value.numerator == 250000
    req = {(h.header.key, h.header.value, h.append_action) for h in r.request_headers_to_add}
    HV = type(r.request_headers_to_add[0])
    assert req == {
        ("x-set", "1", HV.OVERWRITE_IF_EXISTS_OR_ADD),
        ("x-add", "2", HV.APPEND_IF_EXISTS_OR_ADD),
        ("x-dest", "hw", HV.OVERWRITE_IF_EXISTS_OR_ADD),
    }
    assert list(r.request_headers_to_remove) == ["x-drop"]
    assert [h.header.key for h in r.response_headers_to_add] == ["x-resp"] and list(
        r.response_headers_to_remove
    ) == ["server"]
    cors = cors_pb2.CorsPolicy()
    assert r.typed_per_filter_config["envoy.filters.http.cors"].Unpack(cors)
    assert [o.exact or o.safe_regex.regex for o in cors.allow_origin_string_match] == [
        "https://a.example",
        ".*\\.b\\.example",
    ]
    got = (cors.allow_methods, cors.allow_headers, cors.expose_headers, cors.max_age)
    assert got == ("GET,POST", "x-h", "x-e", "86400") and cors.allow_credentials.value is True


def test_destination_port_defaults_to_the_request_port_on_a_multi_port_service() -> None:
    vs = _vs([{"route": [{"destination": {"host": "web"}}]}], name="web")
    vs["spec"]["hosts"] = ["web"]
    (r,) = _routes(vs, host="web.sample.svc.cluster.local", port=80)
    assert r.route.cluster == "outbound|80||web.sample.svc.cluster.local"
    (r,) = _routes(vs, host="web.sample.svc.cluster.local", port=5000)
    assert r.route.cluster == "outbound|5000||web.sample.svc.cluster.local"


def test_which_virtual_service_applies() -> None:
    first = _vs([{"route": [{"destination": {"host": "helloworld", "subset": "v1"}}]}], name="first")
    first["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    second = _vs([{"route": [{"destination": {"host": "helloworld", "subset": "v2"}}]}], name="second")
    second["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    # the oldest wins; the other is not merged in
    assert [r.route.cluster for r in _routes(first, second)] == [f"outbound|5000|v1|{HW}"]
    # one private to the proxy's namespace comes first
    private = _vs(
        [{"route": [{"destination": {"host": "helloworld.sample.svc.cluster.local", "subset": "v2"}}]}],
        "private",
        "sample",
        exportTo=["."],
    )
    private["metadata"]["creationTimestamp"] = "2026-01-03T00:00:00Z"
    assert [r.route.cluster for r in _routes(first, private)] == [f"outbound|5000|v2|{HW}"]
    # ... and is invisible to other namespaces
    elsewhere = md.proxy(namespace="other", metadata=CAPTURED)
    assert [r.route.cluster for r in _routes(first, private, proxy=elsewhere)] == [f"outbound|5000|v1|{HW}"]
    # bound to a gateway only: sidecars keep the default route
    gw_only = _vs([{"route": [{"destination": {"host": "helloworld", "subset": "v1"}}]}], gateways=["gw"])
    assert [r.route.cluster for r in _routes(gw_only)] == [f"outbound|5000||{HW}"]
    # a wildcard host covers the service
    wild = _vs([{"route": [{"destination": {"host": "helloworld", "subset": "v2"}}]}], name="wild")
    wild["spec"]["hosts"] = ["*.sample.svc.cluster.local"]
    assert [r.route.cluster for r in _routes(wild)] == [f"outbound|5000|v2|{HW}"]


def test_the_explicit_proxy_table_uses_virtual_services_too() -> None:
    cfg, _ = networking_config.build(
        [_vs([{"route": [{"destination": {"host": "helloworld", "subset": "v2"}}]}]), DR]
    )
    c = md.ctx([HELLO], networking=cfg)
    (table,) = _decode(
        generator.Generator().generate(
            resources.TYPE_RDS, md.proxy(metadata={"INTERCEPTION_MODE": "NONE"}), c, None
        ),
        route_pb2.RouteConfiguration,
    )
    assert table.virtual_hosts[0].routes[0].route.cluster == f"outbound|5000|v2|{HW}"


@pytest.mark.envoy
def test_envoy_accepts_every_route_field() -> None:
    vs = _vs(
        [
            {"match": [{"uri": {"exact": "/old"}}], "redirect": {"uri": "/new", "redirectCode": 302}},
            {
                "match": [{"uri": {"exact": "/gone"}}],
                "directResponse": {"status": 410, "body": {"string": "gone"}},
            },
            {
                "match": [
                    {
                        "uri": {"regex": "/a.*"},
                        "ignoreUriCase": True,
                        "method": {"exact": "GET"},
                        "headers": {"x": {}},
                        "withoutHeaders": {"y": {"exact": "1"}},
                        "queryParams": {"q": {"regex": "[0-9]+"}},
                    }
                ],
                "route": [
                    {
                        "destination": {"host": "helloworld", "subset": "v1"},
                        "weight": 70,
                        "headers": {"response": {"add": {"x-v": "1"}}},
                    },
                    {"destination": {"host": "helloworld", "subset": "v2"}, "weight": 30},
                ],
                "rewrite": {"uri": "/b", "authority": "x"},
                "timeout": "3s",
                "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx,429"},
                "fault": {
                    "delay": {"fixedDelay": "10ms", "percent": 5},
                    "abort": {"httpStatus": 500, "percentage": {"value": 0.1}},
                },
                "mirrors": [
                    {"destination": {"host": "web", "port": {"number": 80}}, "percentage": {"value": 5}}
                ],
                "headers": {"request": {"set": {"a": "b"}, "remove": ["c"]}},
                "corsPolicy": {
                    "allowOrigins": [{"prefix": "https://"}],
                    "allowMethods": ["GET"],
                    "maxAge": "10s",
                    "allowCredentials": False,
                },
            },
            {
                "rewrite": {"uriRegexRewrite": {"match": "^/x/(.*)", "rewrite": "/\\1"}},
                "route": [{"destination": {"host": "helloworld"}}],
            },
        ]
    )
    cfg, problems = networking_config.build([vs, DR])
    assert problems == []
    c = md.ctx([HELLO, WEB], networking=cfg)
    g = generator.Generator()
    p = md.proxy(metadata=CAPTURED)
    routes = _decode(g.generate(resources.TYPE_RDS, p, c, None), route_pb2.RouteConfiguration)
    assert sum(len(vh.routes) for rcfg in routes for vh in rcfg.virtual_hosts) >= 6
    result = envoyproc.validate(_bootstrap([], [_route_holder(r, i) for i, r in enumerate(routes)]))
    assert result.returncode == 0, result.stdout + result.stderr
