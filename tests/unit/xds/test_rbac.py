"""AuthorizationPolicy → Envoy RBAC as Istio builds it: evaluation order, empty ALLOW, and HTTP-only
fields on TCP (an ALLOW rule is dropped, a DENY rule only loses the field)."""

from __future__ import annotations

from typing import Any

from envoy.config.rbac.v3 import rbac_pb2

from meshplane.policy import config
from meshplane.xds import rbac


def policies(*specs: dict[str, Any]) -> rbac.Policies:
    objs = [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": f"p{i}", "namespace": "sample"},
            "spec": s,
        }
        for i, s in enumerate(specs)
    ]
    cfg, problems = config.build(objs)
    assert problems == []
    return cfg.authorization_policies


PATHS = {"to": [{"operation": {"paths": ["/admin"]}}]}
PRINCIPAL = {"from": [{"source": {"principals": ["cluster.local/ns/sample/sa/sleep"]}}]}


def test_filters_run_audit_then_deny_then_allow() -> None:
    ps = policies({"action": "ALLOW", "rules": [PRINCIPAL]}, {"action": "DENY", "rules": [PATHS]},
                  {"action": "AUDIT", "rules": [PATHS]})  # fmt: skip
    actions = [rbac.rules(ps, a, tcp=False).action for a in (rbac.authz.Action.AUDIT, rbac.authz.Action.DENY,  # type: ignore[union-attr]
                                                              rbac.authz.Action.ALLOW)]  # fmt: skip
    assert actions == [rbac_pb2.RBAC.LOG, rbac_pb2.RBAC.DENY, rbac_pb2.RBAC.ALLOW]
    assert len(rbac.http_filters(ps)) == 3


def test_an_allow_policy_without_rules_is_an_allow_filter_with_no_policy() -> None:
    r = rbac.rules(policies({}), rbac.authz.Action.ALLOW, tcp=False)
    assert r is not None and r.action == rbac_pb2.RBAC.ALLOW and not r.policies


def test_http_only_fields_on_tcp_drop_an_allow_rule_but_widen_a_deny_rule() -> None:
    allow = rbac.rules(policies({"rules": [PATHS, PRINCIPAL]}), rbac.authz.Action.ALLOW, tcp=True)
    assert allow is not None and list(allow.policies) == ["ns[sample]-policy[p0]-rule[1]"]
    deny = rbac.rules(policies({"action": "DENY", "rules": [PATHS]}), rbac.authz.Action.DENY, tcp=True)
    assert deny is not None
    (policy,) = deny.policies.values()
    assert policy.permissions[0].and_rules.rules[0].any  # the path is gone: every connection matches


def test_principals_namespaces_and_wildcards_match_spiffe_ids() -> None:
    ps = policies({"rules": [{"from": [{"source": {"principals": ["*/sa/sleep", "cluster.local/ns/a/*"],
                                                   "namespaces": ["sample"]}}]}]})  # fmt: skip
    (policy,) = rbac.rules(ps, rbac.authz.Action.ALLOW, tcp=False).policies.values()  # type: ignore[union-attr]
    ids = policy.principals[0].and_ids.ids
    names = [p.authenticated.principal_name for p in ids[0].or_ids.ids]
    assert names[0].safe_regex.regex == r"spiffe://.*/sa/sleep"
    assert names[1].prefix == "spiffe://cluster.local/ns/a/"
    assert ids[1].or_ids.ids[0].authenticated.principal_name.safe_regex.regex == ".*/ns/sample/.*"
