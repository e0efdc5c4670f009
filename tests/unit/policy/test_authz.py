"""AuthorizationPolicy: validation naming the field, what is refused, and which policies apply."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.model import crfields
from meshplane.policy import authz, config


def ap(spec: dict[str, Any], ns: str = "sample", name: str = "p") -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def test_a_full_rule_parses() -> None:
    p = authz.parse(
        ap(
            {
                "selector": {"matchLabels": {"app": "hello"}},
                "action": "DENY",
                "rules": [
                    {
                        "from": [
                            {"source": {"principals": ["cluster.local/ns/a/sa/b"], "notNamespaces": ["x"]}}
                        ],
                        "to": [{"operation": {"methods": ["GET"], "notPaths": ["/admin*"], "ports": ["80"]}}],
                        "when": [{"key": "request.headers[x-token]", "values": ["abc"]}],
                    }
                ],
            }
        )
    )
    assert p.action is authz.Action.DENY
    (rule,) = p.rules
    assert rule.sources[0].principals.values == ("cluster.local/ns/a/sa/b",)
    assert rule.sources[0].namespaces.not_values == ("x",)
    assert rule.operations[0].paths.not_values == ("/admin*",)
    assert rule.when[0].key == "request.headers[x-token]"


def src(**fields: Any) -> dict[str, Any]:
    return {"rules": [{"from": [{"source": fields}]}]}


def op(**fields: Any) -> dict[str, Any]:
    return {"rules": [{"to": [{"operation": fields}]}]}


def when(**cond: Any) -> dict[str, Any]:
    return {"rules": [{"when": [cond]}]}


R = "spec.rules[0]"
SRC, OP = f"{R}.from[0].source", f"{R}.to[0].operation"


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        ({"action": "CUSTOM", "provider": {"name": "ext"}}, "spec.provider", "CUSTOM"),
        ({"action": "CUSTOM"}, "spec.action", "CUSTOM"),
        ({"action": "MAYBE"}, "spec.action", "unknown action"),
        ({"targetRefs": [{"kind": "Service", "name": "x"}]}, "spec.targetRefs", "selector"),
        ({"rules": [{"from": []}]}, f"{R}.from", "must not be empty"),
        (src(), SRC, "must not be empty"),
        (src(principals=["a*b"]), f"{SRC}.principals[0]", "wildcard"),
        (src(ipBlocks=["10.0.0.300"]), f"{SRC}.ipBlocks[0]", "IP"),
        (src(requestPrincipals=["iss*/sub"]), f"{SRC}.requestPrincipals[0]", "wildcard"),
        (op(ports=["http"]), f"{OP}.ports[0]", "port"),
        (op(paths=["/api/{*}"]), f"{OP}.paths[0]", "template"),
        (op(verbs=["GET"]), f"{OP}.verbs", "unknown field"),
        (when(key="source.color", values=["red"]), f"{R}.when[0].key", "unknown attribute"),
        (when(key="request.auth.claims[iss]", values=["x"]), f"{R}.when[0].key", "not implemented"),
        (when(key="source.ip"), f"{R}.when[0]", "values or notValues"),
        (when(key="destination.port", values=["0"]), f"{R}.when[0].values[0]", "port"),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(spec: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(crfields.ConfigError) as err:
        authz.parse(ap(spec))
    assert err.value.path == path
    assert words in err.value.problem
    assert str(err.value).startswith("AuthorizationPolicy sample/p: ")
    cfg, problems = config.build([ap(spec), ap({}, name="good")])
    assert [p.path for p in problems] == [path]
    assert [p.name for p in cfg.authorization_policies] == ["good"]


def test_root_namespace_policies_apply_everywhere_and_selectors_pick_workloads() -> None:
    cfg, _ = config.build(
        [
            ap({}, ns="istio-system", name="mesh"),
            ap({"selector": {"matchLabels": {"app": "hello"}}}, name="hello-only"),
            ap({}, ns="other", name="other-ns"),
        ]
    )
    names = lambda ns, labels: [p.name for p in cfg.authorization("istio-system", ns, labels)]  # noqa: E731
    assert names("sample", {"app": "hello"}) == ["mesh", "hello-only"]
    assert names("sample", {"app": "bye"}) == ["mesh"]
    assert names("other", {"app": "hello"}) == ["mesh", "other-ns"]


def test_an_invalid_deny_policy_fails_closed_for_what_it_selects() -> None:
    bad_deny = ap({"action": "DENY", "selector": {"matchLabels": {"app": "hello"}},
                   "rules": [{"when": [{"key": "source.color", "values": ["red"]}]}]})  # fmt: skip
    bad_allow = ap({"rules": [{"when": [{"key": "source.color", "values": ["red"]}]}]}, name="bad-allow")
    cfg, problems = config.build([bad_deny, bad_allow])
    assert [p.path for p in problems] == ["spec.rules[0].when[0].key"] * 2
    (stand_in,) = cfg.authorization("istio-system", "sample", {"app": "hello"})
    assert (stand_in.name, stand_in.action, stand_in.rules) == ("p", authz.Action.DENY, (authz.Rule(),))
    assert cfg.authorization("istio-system", "sample", {"app": "other"}) == ()
