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
    subresources: tuple[str, ...] = ()  # "status", "scale", "approval" (served by the core)
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

    def subresource_kind(self, sub: str) -> tuple[str, str, str]:
        """(group, version, kind) of the object a subresource of this kind reads and writes."""
        return SUBRESOURCE_KINDS.get(sub, (self.group, self.version, self.kind))


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


# Subresources the core serves beside status: (group, version, kind) of the object they carry.
# Kubernetes serves .../scale as autoscaling/v1 Scale (k8s.io/kubernetes pkg/registry/apps/deployment/
# storage/storage.go, ScaleREST); .../approval carries the CertificateSigningRequest itself.
SUBRESOURCE_KINDS: dict[str, tuple[str, str, str]] = {"scale": ("autoscaling", "v1", "Scale")}
SUBRESOURCE_SCHEMAS: dict[str, str] = {"scale": "io.k8s.api.autoscaling.v1.Scale"}

# The built-in kinds, as a v1.32 kube-apiserver lists them in discovery (`kubectl api-resources`).
# One row per kind: group/version, Kind, plural, scope ("ns" namespaced, "cl" cluster), short names,
# categories, subresources (status, scale, approval, finalize). The OpenAPI schema is
# io.k8s.api.<first label of the group>.<version>.<Kind> unless the row's last column names it.
# Not listed (refused with 404, see docs/devcluster-compatibility.md): bindings and
# componentstatuses (virtual, deprecated), and the pods/* connect subresources.
_BUILTIN: tuple[tuple[str, str, str, str, str, str, str, str], ...] = (
    ("v1", "ConfigMap", "configmaps", "ns", "cm", "", "", ""),
    ("v1", "Endpoints", "endpoints", "ns", "ep", "", "", ""),
    ("v1", "Event", "events", "ns", "ev", "", "", ""),
    ("v1", "LimitRange", "limitranges", "ns", "limits", "", "", ""),
    ("v1", "Namespace", "namespaces", "cl", "ns", "", "status", ""),
    ("v1", "Node", "nodes", "cl", "no", "", "status", ""),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims", "ns", "pvc", "", "status", ""),
    ("v1", "PersistentVolume", "persistentvolumes", "cl", "pv", "", "status", ""),
    ("v1", "Pod", "pods", "ns", "po", "all", "status", ""),
    ("v1", "PodTemplate", "podtemplates", "ns", "", "", "", ""),
    ("v1", "ReplicationController", "replicationcontrollers", "ns", "rc", "all", "status scale", ""),
    ("v1", "ResourceQuota", "resourcequotas", "ns", "quota", "", "status", ""),
    ("v1", "Secret", "secrets", "ns", "", "", "", ""),
    ("v1", "ServiceAccount", "serviceaccounts", "ns", "sa", "", "", ""),
    ("v1", "Service", "services", "ns", "svc", "all", "status", ""),
    (
        "apiregistration.k8s.io/v1",
        "APIService",
        "apiservices",
        "cl",
        "",
        "api-extensions",
        "status",
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService",
    ),
    ("apps/v1", "ControllerRevision", "controllerrevisions", "ns", "", "", "", ""),
    ("apps/v1", "DaemonSet", "daemonsets", "ns", "ds", "all", "status", ""),
    ("apps/v1", "Deployment", "deployments", "ns", "deploy", "all", "status scale", ""),
    ("apps/v1", "ReplicaSet", "replicasets", "ns", "rs", "all", "status scale", ""),
    ("apps/v1", "StatefulSet", "statefulsets", "ns", "sts", "all", "status scale", ""),
    ("events.k8s.io/v1", "Event", "events", "ns", "ev", "", "", ""),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "ns",
        "hpa",
        "all",
        "status",
        "",
    ),
    # after v2, which stays the one storage is keyed by: served as v1 too (schema/conversion)
    (
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "ns",
        "hpa",
        "all",
        "status",
        "",
    ),
    ("batch/v1", "CronJob", "cronjobs", "ns", "cj", "all", "status", ""),
    ("batch/v1", "Job", "jobs", "ns", "", "all", "status", ""),
    (
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        "cl",
        "csr",
        "",
        "status approval",
        "",
    ),
    ("networking.k8s.io/v1", "IngressClass", "ingressclasses", "cl", "", "", "", ""),
    ("networking.k8s.io/v1", "Ingress", "ingresses", "ns", "ing", "", "status", ""),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", "ns", "netpol", "", "", ""),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", "ns", "pdb", "", "status", ""),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", "cl", "", "", "", ""),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", "cl", "", "", "", ""),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", "ns", "", "", "", ""),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", "ns", "", "", "", ""),
    ("storage.k8s.io/v1", "CSIDriver", "csidrivers", "cl", "", "", "", ""),
    ("storage.k8s.io/v1", "CSINode", "csinodes", "cl", "", "", "", ""),
    ("storage.k8s.io/v1", "CSIStorageCapacity", "csistoragecapacities", "ns", "", "", "", ""),
    ("storage.k8s.io/v1", "StorageClass", "storageclasses", "cl", "sc", "", "", ""),
    ("storage.k8s.io/v1", "VolumeAttachment", "volumeattachments", "cl", "", "", "status", ""),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        "cl",
        "",
        "api-extensions",
        "",
        "",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        "cl",
        "",
        "api-extensions",
        "status",
        "",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        "cl",
        "",
        "api-extensions",
        "",
        "",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        "cl",
        "",
        "api-extensions",
        "",
        "",
    ),
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "cl",
        "crd crds",
        "api-extensions",
        "status",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    ),
    ("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", "cl", "pc", "", "", ""),
    ("coordination.k8s.io/v1", "Lease", "leases", "ns", "", "", "", ""),
    ("node.k8s.io/v1", "RuntimeClass", "runtimeclasses", "cl", "", "", "", ""),
    ("discovery.k8s.io/v1", "EndpointSlice", "endpointslices", "ns", "", "", "", ""),
    ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "flowschemas", "cl", "", "", "status", ""),
    (
        "flowcontrol.apiserver.k8s.io/v1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        "cl",
        "",
        "",
        "status",
        "",
    ),
)


def _from_row(row: tuple[str, str, str, str, str, str, str, str]) -> ResourceType:
    gv, kind, plural, scope, short, cats, subs, schema = row
    group, _, version = gv.rpartition("/")
    pkg = group.split(".")[0] if group else "core"
    return ResourceType(
        group,
        version,
        kind,
        plural,
        kind.lower(),
        scope == "ns",
        tuple(short.split()),
        tuple(cats.split()),
        tuple(subs.split()),
        schema_name=schema or f"io.k8s.api.{pkg}.{version}.{kind}",
    )


def builtin_types() -> list[ResourceType]:
    return [_from_row(row) for row in _BUILTIN]


# Order of groups in discovery, as kube-apiserver 1.32 lists them (CRD groups follow).
GROUP_ORDER = (
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
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
