"""The roles `meshplane install` renders against the list of the control plane's API calls
(kube/apicalls.py): every call allowed, decided by the dev cluster's RBAC rule matching (Kubernetes'
RuleAllows), and no rule granting anything no call needs. The running control plane's requests are
checked against the same list in tests/integration/discovery/test_discovery_rbac.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshplane.devcluster import seams
from meshplane.devcluster.auth import rbac as kube_rbac
from meshplane.installer import config, rbac, render
from meshplane.kube import apicalls
from tests.support.installenv import CLUSTER1_YAML, CLUSTER2_YAML

NS = "istio-system"
ROOT = Path(__file__).resolve().parents[3]
C, R, M = apicalls.Cluster.CONFIG, apicalls.Cluster.REMOTE, apicalls.Cluster.MANAGED
# (profile, ServiceAccount, whose calls its roles serve): istiod in its own (always managed) cluster,
# the reader of a primary read through a remote secret, the reader of a managed remote
SUBJECTS = [
    ("primary", "istiod", {C, M}),
    ("primary", rbac.READER_SA, {R}),
    ("remote", rbac.READER_SA, {R, M}),
]


def _render(text: str, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return render.render(config.load([("in.yaml", text)], sets))


@pytest.fixture(scope="module")
def primary() -> list[dict[str, Any]]:
    return _render(CLUSTER1_YAML, ("values.pilot.env.EXTERNAL_ISTIOD=true",))


@pytest.fixture(scope="module")
def remote() -> list[dict[str, Any]]:
    return _render(CLUSTER2_YAML.format(addr="127.0.3.1"))


def _sa_rules(objs: list[dict[str, Any]], sa: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace or "" for cluster-wide, rules) of every role bound to ServiceAccount `sa`."""
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs}
    out = []
    for b in objs:
        if b["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == sa for s in b["subjects"]):
            continue
        ns = b["metadata"].get("namespace", "")
        ref = b["roleRef"]
        role = roles[(ref["kind"], ns if ref["kind"] == "Role" else "", ref["name"])]
        out.append((ns, role["rules"]))
    return out


def _allowed(bound: list[tuple[str, list[dict[str, Any]]]], attrs: seams.RequestAttributes) -> bool:
    return any(
        (not ns or ns == attrs.namespace) and any(kube_rbac.rule_allows(r, attrs) for r in rules)
        for ns, rules in bound
    )


def _requests(call: apicalls.ApiCall, user: str) -> list[seams.RequestAttributes]:
    namespaces = {
        apicalls.Scope.CLUSTER: [""],
        apicalls.Scope.ALL_NAMESPACES: ["", "sample"],  # a list across namespaces, and one of them
        apicalls.Scope.SYSTEM_NAMESPACE: [NS],
    }[call.scope]
    u = seams.UserInfo(user)
    return [
        seams.RequestAttributes(u, verb, call.group, "v1", call.resource, call.subresource, ns)
        for verb in call.verbs
        for ns in namespaces
    ]


@pytest.mark.parametrize(("profile", "sa", "clusters"), SUBJECTS)
def test_rendered_roles_allow_every_listed_call(
    profile: str, sa: str, clusters: set[apicalls.Cluster], request: pytest.FixtureRequest
) -> None:
    objs = request.getfixturevalue(profile)
    bound = _sa_rules(objs, sa)
    assert bound, f"nothing bound to {sa} in the {profile} profile"
    missing = [
        f"{a.verb} {a.api_group or 'core'}/{a.resource} in {a.namespace or 'all namespaces'} ({call.caller})"
        for call in apicalls.CALLS
        if call.clusters & clusters
        for a in _requests(call, f"system:serviceaccount:{NS}:{sa}")
        if not _allowed(bound, a)
    ]
    assert not missing, missing


@pytest.mark.parametrize(("profile", "sa", "clusters"), SUBJECTS)
def test_rendered_roles_grant_nothing_no_call_needs(
    profile: str, sa: str, clusters: set[apicalls.Cluster], request: pytest.FixtureRequest
) -> None:
    objs = request.getfixturevalue(profile)
    needed = apicalls.grants(apicalls.CALLS, clusters)
    wide = {(g.group, g.resource, g.verb) for g in needed if g.scope is not apicalls.Scope.SYSTEM_NAMESPACE}
    local = {(g.group, g.resource, g.verb) for g in needed}
    extra = []
    for ns, rules in _sa_rules(objs, sa):
        for rule in rules:
            assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
            for g in rule["apiGroups"]:
                for res in rule["resources"]:
                    for v in rule["verbs"]:
                        # a ClusterRole grant must be needed cluster-wide, unless the subject has no Role
                        # (the reader): then system-namespace calls are granted cluster-wide too
                        ok = (g, res, v) in (local if ns or sa == rbac.READER_SA else wide)
                        if not ok:
                            extra.append(f"{v} {g or 'core'}/{res} ({'Role ' + ns if ns else 'ClusterRole'})")
    assert not extra, f"granted but no call in kube/apicalls.py needs it: {extra}"


def test_no_wildcards_and_no_writes_to_istio_config(primary: list[dict[str, Any]]) -> None:
    """Unlike Istio's chart (`*` on its config groups, status writes): read only what is watched,
    plus the validation controller's dry-run create of a Gateway (never stored)."""
    for _, rules in _sa_rules(primary, "istiod"):
        for rule in rules:
            assert "*" not in rule["resources"] and "*" not in rule["verbs"], rule
            if any(g.endswith("istio.io") for g in rule["apiGroups"]):
                writes = set(rule["verbs"]) - {"get", "list", "watch"}
                assert not writes or (rule["resources"] == ["gateways"] and writes == {"create"}), rule


def test_docs_table_is_the_list() -> None:
    """docs/architecture.md carries the list as a table; it must say what the code lists."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert apicalls.markdown_table() in text, "regenerate the table with kube.apicalls.markdown_table()"
