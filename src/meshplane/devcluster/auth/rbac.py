"""Kubernetes RBAC (plugin/pkg/auth/authorizer/rbac) over the dev cluster's stored policy objects.

A decision looks up the bindings naming the user (or one of its groups) in an index kept by a
synchronous store hook, so it is current the moment a binding write returns, and costs what the
user's own bindings cost rather than a scan of all of them; roles are read from the store.
`system:masters` is allowed everything, like kube-apiserver's privileged-group authorizer. The
bootstrap policy (cluster-admin, system:discovery, ...) is stored as ordinary objects, as
kube-apiserver's RBAC post-start hook does, so it is visible and editable with kubectl.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from meshplane.devcluster import seams
from meshplane.devcluster.auth import tokens
from meshplane.devcluster.storage import store
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

GROUP = "rbac.authorization.k8s.io"
ROLES = f"{GROUP}/roles"
ROLE_BINDINGS = f"{GROUP}/rolebindings"
CLUSTER_ROLES = f"{GROUP}/clusterroles"
CLUSTER_ROLE_BINDINGS = f"{GROUP}/clusterrolebindings"
MASTERS = "system:masters"


class PolicyReader(Protocol):
    """The store: objects without copying (read-only), and a hook on every committed event."""

    def peek(self, key: str, namespace: str, name: str) -> Obj | None: ...

    def items(self, key: str, namespace: str | None = None) -> Iterator[Obj]: ...

    def add_hook(self, fn: Callable[[store.Event], None]) -> None: ...


def _has(items: Any, value: str) -> bool:
    return isinstance(items, list) and ("*" in items or value in items)


def _resource_matches(rule: Obj, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule.get("resources") or []:
        if r == "*" or r == combined:
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: Obj, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if not isinstance(url, str):
            continue
        if url == "*" or url == path:
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(rule: Obj, attrs: seams.RequestAttributes) -> bool:
    """rbac.RuleAllows for one PolicyRule."""
    if not isinstance(rule, dict) or not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    if not _has(rule.get("apiGroups"), attrs.api_group):
        return False
    if not _resource_matches(rule, attrs.resource, attrs.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def subject_keys(binding: Obj, binding_namespace: str) -> frozenset[str]:
    """Index keys of a binding's subjects: `u:NAME` for users and service accounts, `g:NAME` for groups."""
    keys = set()
    for subj in _subjects(binding):
        name, kind = subj.get("name"), subj.get("kind")
        if not isinstance(name, str) or not name:
            continue
        if kind == "User":
            keys.add(f"u:{name}")
        elif kind == "Group":
            keys.add(f"g:{name}")
        elif kind == "ServiceAccount":
            ns = subj.get("namespace") or binding_namespace
            if isinstance(ns, str) and ns:
                keys.add(f"u:{tokens.username(ns, name)}")
    return frozenset(keys)


def user_keys(user: seams.UserInfo) -> list[str]:
    return [f"u:{user.username}", *(f"g:{g}" for g in user.groups)]


class BindingIndex:
    """Which bindings name which subjects: cluster-wide for ClusterRoleBindings, per namespace for
    RoleBindings. Fed by store events."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, str], set[str]] = {}  # (namespace or "", key) -> binding names
        self._keys: dict[tuple[str, str, str], frozenset[str]] = {}  # (store key, ns, name) -> keys

    def on_event(self, ev: store.Event) -> None:
        if ev.key not in (CLUSTER_ROLE_BINDINGS, ROLE_BINDINGS):
            return
        meta = _meta(ev.obj)
        ns = str(meta.get("namespace") or "") if ev.key == ROLE_BINDINGS else ""
        name = str(meta.get("name", ""))
        ident = (ev.key, ns, name)
        for k in self._keys.pop(ident, frozenset()):
            names = self._index.get((ns, k))
            if names is not None:
                names.discard(name)
                if not names:
                    del self._index[(ns, k)]
        if ev.type == store.DELETED:
            return
        keys = subject_keys(ev.obj, ns)
        self._keys[ident] = keys
        for k in keys:
            self._index.setdefault((ns, k), set()).add(name)

    def names(self, namespace: str, keys: list[str]) -> list[str]:
        found: set[str] = set()
        for k in keys:
            found |= self._index.get((namespace, k), set())
        return sorted(found)


class Authorizer:
    """Implements seams.Authorizer: RBAC for everyone but system:masters."""

    def __init__(self, reader: PolicyReader, cluster: str = "") -> None:
        self._reader = reader
        self._cluster = cluster
        self._index = BindingIndex()
        for key in (CLUSTER_ROLE_BINDINGS, ROLE_BINDINGS):
            for obj in reader.items(key):
                self._index.on_event(store.Event(store.ADDED, key, obj, 0))
        reader.add_hook(self._index.on_event)

    async def authorize(self, attrs: seams.RequestAttributes) -> tuple[bool, str]:
        return self.decide(attrs)

    def decide(self, attrs: seams.RequestAttributes) -> tuple[bool, str]:
        """(allowed, reason). As in Kubernetes the reason is empty unless a binding names a missing
        role (`RBAC: role.rbac.authorization.k8s.io "x" not found`); the REST core writes the rest
        of the denial (`... is forbidden: User "u" cannot get resource ...`)."""
        if MASTERS in attrs.user.groups:
            return True, ""
        errors: list[str] = []
        for rules in self._rule_sets(attrs, errors):
            if any(rule_allows(r, attrs) for r in rules):
                return True, ""
        reason = ""
        if errors:
            agg = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            reason = f"RBAC: {agg}"
        log.debug(
            "denied cluster=%s user=%s verb=%s resource=%s namespace=%s",
            self._cluster,
            attrs.user.username,
            attrs.verb,
            attrs.resource or attrs.path,
            attrs.namespace,
        )
        return False, reason

    def _rule_sets(self, attrs: seams.RequestAttributes, errors: list[str]) -> Iterator[list[Obj]]:
        """The rules of every role bound to the user where the request applies, lazily."""
        keys = user_keys(attrs.user)
        for name in self._index.names("", keys):
            crb = self._reader.peek(CLUSTER_ROLE_BINDINGS, "", name)
            ref = (crb or {}).get("roleRef") or {}
            if ref.get("kind") != "ClusterRole":
                continue
            rules = self._role_rules("", "ClusterRole", str(ref.get("name", "")), errors)
            if rules is not None:
                yield rules
        if not attrs.namespace:
            return
        for name in self._index.names(attrs.namespace, keys):
            rb = self._reader.peek(ROLE_BINDINGS, attrs.namespace, name)
            ref = (rb or {}).get("roleRef") or {}
            rules = self._role_rules(
                attrs.namespace, str(ref.get("kind", "")), str(ref.get("name", "")), errors
            )
            if rules is not None:
                yield rules

    def _role_rules(self, namespace: str, kind: str, name: str, errors: list[str]) -> list[Obj] | None:
        if kind == "ClusterRole":
            role = self._reader.peek(CLUSTER_ROLES, "", name)
            missing = f'clusterrole.{GROUP} "{name}" not found'
        elif kind == "Role":
            role = self._reader.peek(ROLES, namespace, name)
            missing = f'role.{GROUP} "{name}" not found'
        else:
            return None
        if role is None:
            errors.append(missing)
            return None
        rules = role.get("rules")
        return rules if isinstance(rules, list) else []


def _subjects(binding: Obj) -> list[Obj]:
    subjects = binding.get("subjects")
    return [s for s in subjects if isinstance(s, dict)] if isinstance(subjects, list) else []


# The bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), the part the
# dev cluster's users meet: the admin role and what every authenticated user may do.

_BOOTSTRAP_META = {
    "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
}


def _cluster_role(name: str, rules: list[Obj]) -> Obj:
    meta = {"name": name, **{k: dict(v) for k, v in _BOOTSTRAP_META.items()}}
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules}


def _cluster_binding(name: str, role: str, groups: list[str]) -> Obj:
    meta = {"name": name, **{k: dict(v) for k, v in _BOOTSTRAP_META.items()}}
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups],
    }


def bootstrap_policy() -> list[tuple[str, Obj]]:
    """(store key, object) pairs to create when absent at start-up."""
    get = ["get"]
    health = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    roles = [
        _cluster_role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
        _cluster_role(
            "system:discovery",
            [
                {
                    "nonResourceURLs": sorted(
                        ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", *health]
                    ),
                    "verbs": get,
                }
            ],
        ),
        _cluster_role("system:public-info-viewer", [{"nonResourceURLs": health, "verbs": get}]),
        _cluster_role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ],
        ),
        _cluster_role(
            "system:service-account-issuer-discovery",
            [
                {
                    "nonResourceURLs": [
                        "/.well-known/openid-configuration",
                        "/.well-known/openid-configuration/",
                        "/openid/v1/jwks",
                        "/openid/v1/jwks/",
                    ],
                    "verbs": get,
                }
            ],
        ),
    ]
    bindings = [
        _cluster_binding("cluster-admin", "cluster-admin", [MASTERS]),
        _cluster_binding("system:discovery", "system:discovery", ["system:authenticated"]),
        _cluster_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            ["system:authenticated", "system:unauthenticated"],
        ),
        _cluster_binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _cluster_binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            ["system:serviceaccounts"],
        ),
    ]
    return [(CLUSTER_ROLES, r) for r in roles] + [(CLUSTER_ROLE_BINDINGS, b) for b in bindings]
