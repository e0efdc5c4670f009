"""Every Kubernetes API call meshplane's control plane makes, as data (the RBAC audit, issue 12).

`meshplane install` renders istiod's ClusterRole/Role and the reader's ClusterRole from this list
(installer/rbac.py), tests check that the rendered roles allow each call and grant nothing beyond
them, and an integration test runs `meshplane discovery` under exactly those roles on dev clusters
that enforce RBAC, recording every request it makes: a request not listed here fails that test.

Which credentials make a call (`Cluster`):
- CONFIG: the cluster the control plane runs in, as its own ServiceAccount (`istiod`, in-cluster
  config from the projected token), through istiod's ClusterRole and its Role in the system
  namespace. The local cluster is always managed, so it also gets every MANAGED call.
- REMOTE: every cluster attached by a remote secret, as `istio-reader-service-account` (the
  secret `create-remote-secret` writes), through the reader ClusterRole.
- MANAGED: a remote cluster this control plane manages (EXTERNAL_ISTIOD=true and the remote's
  system namespace names this cluster in `topology.istio.io/controlPlaneClusters`): the remote
  profile's reader ClusterRole adds these writes.

Not listed, because they make none: the agent (it reads its projected token from a file and talks
only to istiod's CA and xDS) and the injector's admission handler (it answers AdmissionReviews;
its only API use is the `istio-sidecar-injector` ConfigMap watch listed below). `meshplane` CLI
commands (install, proxy-status, create-remote-secret) run with the user's kubeconfig, not a role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

# the order RBAC rules list verbs in (Kubernetes' own order in `kubectl create role --help`)
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


class Scope(StrEnum):
    CLUSTER = "cluster"  # a cluster-scoped kind (Namespace, Node, webhook configurations, TokenReview)
    ALL_NAMESPACES = "all-namespaces"  # a namespaced kind, in every namespace
    SYSTEM_NAMESPACE = "system-namespace"  # the control plane's namespace only (istio-system)


class Cluster(StrEnum):
    CONFIG = "config"
    REMOTE = "remote"
    MANAGED = "managed"


@dataclass(frozen=True, slots=True)
class ApiCall:
    caller: str  # the module that makes the call
    group: str  # "" is the core group
    resource: str
    verbs: tuple[str, ...]
    scope: Scope
    clusters: frozenset[Cluster]
    why: str
    subresource: str = ""

    @property
    def rbac_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


_C, _R, _M = Cluster.CONFIG, Cluster.REMOTE, Cluster.MANAGED
_WATCH = ("list", "watch")  # an informer: list (chunked), then watch from its resourceVersion

CALLS: tuple[ApiCall, ...] = (
    # service registry of every cluster (registry/cluster.py)
    ApiCall(
        "registry/cluster.py",
        "",
        "services",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C, _R}),
        "Services → mesh hosts",
    ),
    ApiCall(
        "registry/cluster.py",
        "discovery.k8s.io",
        "endpointslices",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C, _R}),
        "endpoints of every host",
    ),
    ApiCall(
        "registry/cluster.py",
        "",
        "pods",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C, _R}),
        "endpoint labels, locality, network, service account",
    ),
    ApiCall(
        "registry/cluster.py",
        "",
        "nodes",
        _WATCH,
        Scope.CLUSTER,
        frozenset({_C, _R}),
        "locality from node topology labels",
    ),
    ApiCall(
        "registry/cluster.py",
        "",
        "namespaces",
        _WATCH,
        Scope.CLUSTER,
        frozenset({_C, _R}),
        "the system namespace's topology.istio.io/network label",
    ),
    # mesh and networking configuration, from the config cluster only (discovery/config.py)
    ApiCall(
        "discovery/config.py",
        "",
        "configmaps",
        _WATCH,
        Scope.SYSTEM_NAMESPACE,
        frozenset({_C}),
        "the `istio` mesh ConfigMap (fieldSelector metadata.name)",
    ),
    ApiCall(
        "discovery/config.py",
        "security.istio.io",
        "peerauthentications",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C}),
        "mTLS mode",
    ),
    ApiCall(
        "discovery/config.py",
        "networking.istio.io",
        "gateways",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C}),
        "the east-west and ingress Gateways",
    ),
    ApiCall(
        "discovery/config.py",
        "networking.istio.io",
        "virtualservices",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C}),
        "HTTP routes",
    ),
    ApiCall(
        "discovery/config.py",
        "networking.istio.io",
        "destinationrules",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C}),
        "subsets and traffic policy",
    ),
    ApiCall(
        "discovery/config.py",
        "networking.istio.io",
        "sidecars",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C}),
        "Sidecar egress scoping",
    ),
    ApiCall(
        "discovery/config.py",
        "networking.istio.io",
        "serviceentries",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C}),
        "services outside the registry",
    ),
    ApiCall(
        "discovery/config.py",
        "security.istio.io",
        "authorizationpolicies",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C}),
        "ALLOW/DENY/AUDIT policies → Envoy RBAC",
    ),
    ApiCall(
        "discovery/config.py",
        "security.istio.io",
        "requestauthentications",
        _WATCH,
        Scope.ALL_NAMESPACES,
        frozenset({_C}),
        "JWT rules → Envoy jwt_authn",
    ),
    # the validation webhook controller (security/webhookpatch.py ValidationPatcher, config cluster)
    ApiCall(
        "security/webhookpatch.py",
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        ("get", *_WATCH, "update"),
        Scope.CLUSTER,
        frozenset({_C}),
        "patch the validation webhook's caBundle and failurePolicy (labelSelector istio.io/rev)",
    ),
    ApiCall(
        "security/webhookpatch.py",
        "networking.istio.io",
        "gateways",
        ("create",),
        Scope.SYSTEM_NAMESPACE,
        frozenset({_C}),
        "readiness of /validate: a dry-run create of an invalid Gateway must be denied",
    ),
    # the injector's settings (discovery/webhook.py)
    ApiCall(
        "discovery/webhook.py",
        "",
        "configmaps",
        _WATCH,
        Scope.SYSTEM_NAMESPACE,
        frozenset({_C}),
        "the `istio-sidecar-injector` ConfigMap (template values)",
    ),
    # remote clusters (registry/multicluster.py)
    ApiCall(
        "registry/multicluster.py",
        "",
        "secrets",
        _WATCH,
        Scope.SYSTEM_NAMESPACE,
        frozenset({_C}),
        "remote secrets (label istio/multiCluster=true)",
    ),
    # the CA (security/castore.py, security/carotation.py)
    ApiCall(
        "security/castore.py",
        "",
        "secrets",
        ("get", "create", "update"),
        Scope.SYSTEM_NAMESPACE,
        frozenset({_C}),
        "cacerts / istio-ca-secret: load, create the self-signed root, rotate it",
    ),
    ApiCall(
        "security/carotation.py",
        "",
        "secrets",
        _WATCH,
        Scope.SYSTEM_NAMESPACE,
        frozenset({_C}),
        "cacerts / istio-ca-secret changes (fieldSelector metadata.name)",
    ),
    ApiCall(
        "security/tokenreview.py",
        "authentication.k8s.io",
        "tokenreviews",
        ("create",),
        Scope.CLUSTER,
        frozenset({_C, _R}),
        "authenticate CSR and xDS callers' tokens in their cluster",
    ),
    # what runs in every managed cluster (discovery/managed.py)
    ApiCall(
        "discovery/managed.py",
        "",
        "namespaces",
        ("get",),
        Scope.CLUSTER,
        frozenset({_R}),
        "checkShouldLead: the remote system namespace's controlPlaneClusters annotation",
    ),
    ApiCall(
        "security/nscontroller.py",
        "",
        "namespaces",
        _WATCH,
        Scope.CLUSTER,
        frozenset({_C, _M}),
        "every namespace gets istio-ca-root-cert",
    ),
    ApiCall(
        "security/nscontroller.py",
        "",
        "configmaps",
        (*_WATCH, "create", "update"),
        Scope.ALL_NAMESPACES,
        frozenset({_C, _M}),
        "write and repair istio-ca-root-cert",
    ),
    ApiCall(
        "security/webhookpatch.py",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        ("get", *_WATCH, "update"),
        Scope.CLUSTER,
        frozenset({_C, _M}),
        "patch the injection webhook's caBundle (labelSelector istio.io/rev)",
    ),
    ApiCall(
        "kube/leader.py",
        "",
        "configmaps",
        ("get", "create", "update"),
        Scope.SYSTEM_NAMESPACE,
        frozenset({_C, _M}),
        "the leader-election ConfigMap lock",
    ),
)


@dataclass(frozen=True, slots=True)
class Grant:
    """One (group, resource, verb) an RBAC rule grants, and where."""

    group: str
    resource: str  # with "/subresource" when there is one
    verb: str
    scope: Scope


def grants(calls: Iterable[ApiCall], clusters: Iterable[Cluster]) -> set[Grant]:
    """The (group, resource, verb, scope) the given clusters' calls need."""
    wanted = set(clusters)
    return {
        Grant(c.group, c.rbac_resource, v, c.scope) for c in calls if c.clusters & wanted for v in c.verbs
    }


def rules(needed: Iterable[Grant]) -> list[dict[str, object]]:
    """RBAC rules granting exactly `needed` (scope aside): one rule per (group, resource)."""
    by: dict[tuple[str, str], set[str]] = {}
    for g in needed:
        by.setdefault((g.group, g.resource), set()).add(g.verb)
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": [v for v in VERB_ORDER if v in verbs]}
        for (group, resource), verbs in sorted(by.items())
    ]


def markdown_table() -> str:
    """The list as the table in docs/architecture.md (a test keeps the two equal)."""
    lines = [
        "| caller | apiGroup | resource | verbs | scope | clusters | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in CALLS:
        clusters = ", ".join(x.value for x in Cluster if x in c.clusters)
        lines.append(
            f"| {c.caller} | {c.group or 'core'} | {c.rbac_resource} | {', '.join(c.verbs)} | "
            f"{c.scope.value} | {clusters} | {c.why} |"
        )
    return "\n".join(lines)
