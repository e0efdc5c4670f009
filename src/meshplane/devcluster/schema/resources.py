"""The kinds the dev cluster serves: group/version/kind/plural/scope/subresources.

Built-in kinds are fixed; a CustomResourceDefinition adds (and its deletion removes) one entry per
served version. Extra handlers (the serviceaccounts/token subresource, the create-only
tokenreviews) are registered here too so that discovery lists them and routing finds them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from meshplane.devcluster import seams
from meshplane.runtime.jsonobj import Obj

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status" (served by the core)
    verbs: tuple[str, ...] = ALL_VERBS
    schema_name: str = ""  # OpenAPI component name, e.g. io.k8s.api.core.v1.Pod
    crd: bool = False
    storage: bool = True  # False for virtual resources (tokenreviews)
    printer_columns: tuple[
        tuple[str, str, str], ...
    ] = ()  # CRD additionalPrinterColumns (name, type, jsonPath)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def key(self) -> str:
        """Storage key, one per group+plural whatever the version: `pods`, `apps/deployments`."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


@dataclass(frozen=True, slots=True)
class HandlerRequest:
    """What an extra (subresource or virtual) handler gets, after authn/authz and body parsing."""

    resource: ResourceType
    subresource: str
    namespace: str
    name: str
    user: seams.UserInfo
    body: Obj
    query: dict[str, str]
    dry_run: bool


# An extra handler returns (HTTP status code, response object).
Handler = Callable[[HandlerRequest], Awaitable[tuple[int, Obj]]]


@dataclass(slots=True)
class _Extra:
    handler: Handler
    verbs: tuple[str, ...]
    kind: str
    group: str
    version: str


def _core(
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    cats: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        "",
        "v1",
        kind,
        plural,
        kind.lower(),
        namespaced,
        short,
        cats,
        ("status",) if status else (),
        schema_name=f"io.k8s.api.core.v1.{kind}",
    )


def _grp(
    group: str,
    pkg: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    cats: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group,
        "v1",
        kind,
        plural,
        kind.lower(),
        namespaced,
        short,
        cats,
        ("status",) if status else (),
        schema_name=f"io.k8s.api.{pkg}.v1.{kind}",
    )


def builtin_types() -> list[ResourceType]:
    return [
        _core("Namespace", "namespaces", False, ("ns",), status=True),
        _core("Service", "services", True, ("svc",), status=True, cats=("all",)),
        _core("Endpoints", "endpoints", True, ("ep",)),
        _core("Pod", "pods", True, ("po",), status=True, cats=("all",)),
        _core("ConfigMap", "configmaps", True, ("cm",)),
        _core("Secret", "secrets", True),
        _core("ServiceAccount", "serviceaccounts", True, ("sa",)),
        _core("Node", "nodes", False, ("no",), status=True),
        _core("Event", "events", True, ("ev",)),
        _grp("discovery.k8s.io", "discovery", "EndpointSlice", "endpointslices"),
        _grp("coordination.k8s.io", "coordination", "Lease", "leases"),
        _grp("apps", "apps", "Deployment", "deployments", True, ("deploy",), status=True, cats=("all",)),
        _grp("apps", "apps", "ReplicaSet", "replicasets", True, ("rs",), status=True, cats=("all",)),
        _grp("apps", "apps", "DaemonSet", "daemonsets", True, ("ds",), status=True, cats=("all",)),
        _grp("apps", "apps", "StatefulSet", "statefulsets", True, ("sts",), status=True, cats=("all",)),
        _grp("policy", "policy", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), status=True),
        ResourceType(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            True,
            ("hpa",),
            ("all",),
            ("status",),
            schema_name="io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        ),
        _grp(
            "admissionregistration.k8s.io",
            "admissionregistration",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            False,
        ),
        _grp(
            "admissionregistration.k8s.io",
            "admissionregistration",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            False,
        ),
        _grp("rbac.authorization.k8s.io", "rbac", "Role", "roles"),
        _grp("rbac.authorization.k8s.io", "rbac", "RoleBinding", "rolebindings"),
        _grp("rbac.authorization.k8s.io", "rbac", "ClusterRole", "clusterroles", False),
        _grp("rbac.authorization.k8s.io", "rbac", "ClusterRoleBinding", "clusterrolebindings", False),
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            "customresourcedefinition",
            False,
            ("crd", "crds"),
            ("api-extensions",),
            ("status",),
            schema_name="io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        ),
    ]


# Preferred order of groups in discovery (as Kubernetes lists them; CRD groups follow).
GROUP_ORDER = (
    "",
    "apps",
    "events.k8s.io",
    "autoscaling",
    "policy",
    "authentication.k8s.io",
    "rbac.authorization.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
)


@dataclass(slots=True)
class Registry:
    """All served resource types, indexed for routing; notifies listeners when CRDs change it."""

    _types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)  # (group, version, plural)
    _extras: dict[tuple[str, str, str], _Extra] = field(default_factory=dict)  # (group, plural, subresource)
    _listeners: list[Callable[[], None]] = field(default_factory=list)
    generation: int = 0

    @classmethod
    def with_builtins(cls) -> Registry:
        reg = cls()
        for rt in builtin_types():
            reg.add(rt)
        return reg

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt
        self._changed()

    def remove(self, group: str, plural: str) -> list[ResourceType]:
        gone = [rt for k, rt in self._types.items() if k[0] == group and k[2] == plural]
        for rt in gone:
            del self._types[(rt.group, rt.version, rt.plural)]
        if gone:
            self._changed()
        return gone

    def on_change(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def _changed(self) -> None:
        self.generation += 1
        for fn in self._listeners:
            fn()

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        for rt in self._types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def by_key(self, key: str) -> ResourceType | None:
        """Any served version of a storage key (group/plural)."""
        for rt in self._types.values():
            if rt.key == key:
                return rt
        return None

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def group_versions(self) -> dict[str, list[str]]:
        """group -> versions, groups in discovery order."""
        out: dict[str, list[str]] = {}
        groups = sorted(
            {rt.group for rt in self._types.values()},
            key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER), g),
        )
        for g in groups:
            versions = sorted({rt.version for rt in self._types.values() if rt.group == g}, key=_version_key)
            out[g] = versions
        for (g, _p, _s), ex in self._extras.items():
            out.setdefault(g, [])
            if ex.version not in out[g]:
                out[g].append(ex.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rt for rt in self._types.values() if rt.group == group and rt.version == version),
            key=lambda r: r.plural,
        )

    # extra handlers (B's token subresource and tokenreviews)

    def add_subresource(
        self,
        group: str,
        plural: str,
        subresource: str,
        kind: str,
        handler: Handler,
        *,
        version: str = "v1",
        verbs: tuple[str, ...] = ("create",),
        response_group: str | None = None,
    ) -> None:
        """Serve POST .../PLURAL/NAME/SUBRESOURCE with `handler` (listed in discovery)."""
        self._extras[(group, plural, subresource)] = _Extra(
            handler, verbs, kind, response_group if response_group is not None else group, version
        )
        self._changed()

    def add_virtual(self, rt: ResourceType, handler: Handler) -> None:
        """Serve a create-only resource with no storage (e.g. tokenreviews)."""
        rt = ResourceType(
            rt.group,
            rt.version,
            rt.kind,
            rt.plural,
            rt.singular,
            rt.namespaced,
            rt.short_names,
            rt.categories,
            rt.subresources,
            rt.verbs,
            rt.schema_name,
            rt.crd,
            storage=False,
            printer_columns=rt.printer_columns,
        )
        self._types[(rt.group, rt.version, rt.plural)] = rt
        self._extras[(rt.group, rt.plural, "")] = _Extra(handler, rt.verbs, rt.kind, rt.group, rt.version)
        self._changed()

    def extra(self, group: str, plural: str, subresource: str) -> _Extra | None:
        return self._extras.get((group, plural, subresource))

    def extra_subresources(self, group: str, plural: str) -> list[tuple[str, _Extra]]:
        return [(s, ex) for (g, p, s), ex in self._extras.items() if g == group and p == plural and s]


def _version_key(v: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, 0, 0)
    major = int(m.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor)
