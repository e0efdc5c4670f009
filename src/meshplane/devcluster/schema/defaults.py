"""Per-kind defaulting, as Kubernetes' scheme defaults and registry strategies do it."""

from __future__ import annotations

import base64
import copy
import ipaddress
from collections.abc import Iterable
from typing import Any

from meshplane.devcluster import errors
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj


class ServiceIPs:
    """Allocates ClusterIPs from the service range; the first host address is the API server's."""

    def __init__(self, cidr: str) -> None:
        try:
            self.network = ipaddress.ip_network(cidr)
        except ValueError as e:
            raise ValueError(f"invalid service CIDR {cidr!r}: {e}") from e
        if self.network.num_addresses < 4:
            raise ValueError(f"service CIDR {cidr!r} is too small")
        self._reserved: set[str] = set()

    @property
    def api_ip(self) -> str:
        return str(self.network.network_address + 1)

    def allocate(self, used: Iterable[str]) -> str:
        taken = set(used) | self._reserved
        for host in self.network.hosts():
            ip = str(host)
            if ip not in taken:
                self._reserved.add(ip)
                return ip
        raise errors.ApiError(500, f"no ClusterIP left in {self.network}", "InternalError")

    def reserve(self, ip: str, used: Iterable[str], name: str) -> None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError as e:
            raise errors.invalid(
                "Service",
                "",
                name,
                [
                    (
                        "FieldValueInvalid",
                        "spec.clusterIPs[0]",
                        f'Invalid value: "{ip}": must be a valid IP address',
                    )
                ],
            ) from e
        if addr not in self.network:
            raise errors.invalid(
                "Service",
                "",
                name,
                [
                    (
                        "FieldValueInvalid",
                        "spec.clusterIPs",
                        f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: the provided IP ({ip}) '
                        f"is not in the valid range. The range of valid IPs is {self.network}",
                    )
                ],
            )
        if ip in set(used) or ip in self._reserved:
            raise errors.invalid(
                "Service",
                "",
                name,
                [
                    (
                        "FieldValueInvalid",
                        "spec.clusterIPs",
                        f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: '
                        "provided IP is already allocated",
                    )
                ],
            )
        self._reserved.add(ip)

    def release(self, ip: str) -> None:
        self._reserved.discard(ip)


def service(obj: Obj, old: Obj | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]
    if old is not None:
        ospec = old.get("spec") or {}
        if not spec.get("clusterIP") and ospec.get("clusterIP"):
            spec["clusterIP"] = ospec["clusterIP"]
            spec["clusterIPs"] = ospec.get("clusterIPs") or [ospec["clusterIP"]]
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def pod(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for group in ("containers", "initContainers"):
        for c in spec.get(group) or []:
            if not isinstance(c, dict):
                continue
            image = str(c.get("image", ""))
            latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", "BestEffort")


def deployment(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("type", "RollingUpdate")
        strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        pod(template)
        template.pop("status", None)
    obj.setdefault("status", {})


def replicaset(obj: Obj) -> None:
    """ReplicaSets and StatefulSets (the rest of a StatefulSet's defaults are in _SCALARS)."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        pod(template)
        template.pop("status", None)
    obj.setdefault("status", {"replicas": 0})


def _template_only(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        pod(template)
        template.pop("status", None)
    obj.setdefault("status", {})


def namespace(obj: Obj) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")


def secret(obj: Obj) -> None:
    """`stringData` is write-only: merged into `data` (base64, overriding keys), as the API server does."""
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data")
        data = dict(data) if isinstance(data, dict) else {}
        for key, value in string_data.items():
            if isinstance(value, str):
                data[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = data


def crd(obj: Obj, wall: float) -> None:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    status = obj.setdefault("status", {})
    accepted = dict(names)
    if "singular" not in accepted and "kind" in names:
        accepted["singular"] = str(names["kind"]).lower()
    if "listKind" not in accepted and "kind" in names:
        accepted["listKind"] = f"{names['kind']}List"
    status["acceptedNames"] = accepted
    status["storedVersions"] = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
    now = rfc3339.format(wall)
    status["conditions"] = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
            "lastTransitionTime": now,
        },
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
            "lastTransitionTime": now,
        },
    ]


# Defaults of the other built-in kinds, as their SetDefaults_* functions set them
# (k8s.io/kubernetes pkg/apis/<group>/v1/defaults.go): dotted paths, `[]` for each item of a list,
# set where absent. Pod templates inside are defaulted as pods are (_TEMPLATES).
_SCALARS: dict[tuple[str, str], tuple[tuple[str, Any], ...]] = {
    ("", "endpoints"): (("subsets[].ports[].protocol", "TCP"),),
    ("", "persistentvolumeclaims"): (("spec.volumeMode", "Filesystem"), ("status.phase", "Pending")),
    ("", "persistentvolumes"): (
        ("spec.persistentVolumeReclaimPolicy", "Retain"),
        ("spec.volumeMode", "Filesystem"),
        ("status.phase", "Pending"),
    ),
    ("", "replicationcontrollers"): (("spec.replicas", 1), ("status.replicas", 0)),
    ("apps", "statefulsets"): (
        ("spec.podManagementPolicy", "OrderedReady"),
        ("spec.updateStrategy.type", "RollingUpdate"),
        ("spec.revisionHistoryLimit", 10),
        ("spec.persistentVolumeClaimRetentionPolicy.whenDeleted", "Retain"),
        ("spec.persistentVolumeClaimRetentionPolicy.whenScaled", "Retain"),
        ("status.replicas", 0),
    ),
    ("apps", "daemonsets"): (
        ("spec.updateStrategy.type", "RollingUpdate"),
        ("spec.revisionHistoryLimit", 10),
        # status counters Go always writes (int32 fields without omitempty)
        ("status.currentNumberScheduled", 0),
        ("status.numberMisscheduled", 0),
        ("status.desiredNumberScheduled", 0),
        ("status.numberReady", 0),
    ),
    # status.currentReplicas: required in v1 (v2 omits it when 0; both versions share these defaults)
    ("autoscaling", "horizontalpodautoscalers"): (
        ("spec.minReplicas", 1),
        ("status.desiredReplicas", 0),
        ("status.currentReplicas", 0),
    ),
    ("policy", "poddisruptionbudgets"): (
        ("status.disruptionsAllowed", 0),
        ("status.currentHealthy", 0),
        ("status.desiredHealthy", 0),
        ("status.expectedPods", 0),
    ),
    ("storage.k8s.io", "volumeattachments"): (("status.attached", False),),
    ("batch", "jobs"): (
        ("spec.parallelism", 1),
        ("spec.backoffLimit", 6),
        ("spec.completionMode", "NonIndexed"),
        ("spec.suspend", False),
        ("spec.podReplacementPolicy", "TerminatingOrFailed"),
    ),
    ("batch", "cronjobs"): (
        ("spec.concurrencyPolicy", "Allow"),
        ("spec.suspend", False),
        ("spec.successfulJobsHistoryLimit", 3),
        ("spec.failedJobsHistoryLimit", 1),
    ),
    ("networking.k8s.io", "networkpolicies"): (
        ("spec.ingress[].ports[].protocol", "TCP"),
        ("spec.egress[].ports[].protocol", "TCP"),
    ),
    ("storage.k8s.io", "storageclasses"): (("reclaimPolicy", "Delete"), ("volumeBindingMode", "Immediate")),
    ("storage.k8s.io", "csidrivers"): (
        ("spec.attachRequired", True),
        ("spec.podInfoOnMount", False),
        ("spec.storageCapacity", False),
        ("spec.fsGroupPolicy", "ReadWriteOnceWithFSType"),
        ("spec.requiresRepublish", False),
        ("spec.volumeLifecycleModes", ["Persistent"]),
    ),
    ("scheduling.k8s.io", "priorityclasses"): (("preemptionPolicy", "PreemptLowerPriority"),),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"): (("spec.matchingPrecedence", 1000),),
}
# Where the kinds above (and batch's) keep a pod template.
_TEMPLATES: dict[tuple[str, str], str] = {
    ("", "podtemplates"): "template",
    ("", "replicationcontrollers"): "spec.template",
    ("batch", "jobs"): "spec.template",
    ("batch", "cronjobs"): "spec.jobTemplate.spec.template",
}


def _set_default(node: Any, parts: list[str], value: Any) -> None:
    """Set `parts` (a path) to `value` where absent; `x[]` walks every item of list x."""
    if not isinstance(node, dict) or not parts:
        return
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        for item in node.get(head[:-2]) or []:
            _set_default(item, rest, value)
        return
    if not rest:
        if node.get(head) is None:
            node[head] = copy.deepcopy(value)
        return
    child = node.get(head)
    if child is None:
        child = node[head] = {}
    _set_default(child, rest, value)


def _table_defaults(group: str, plural: str, obj: Obj) -> None:
    if (group, plural) == ("networking.k8s.io", "networkpolicies"):
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict) and not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress", *(["Egress"] if spec.get("egress") else [])]
    if (group, plural) == ("batch", "jobs"):
        spec = obj.get("spec")
        if isinstance(spec, dict) and spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
    for path, value in _SCALARS.get((group, plural), ()):
        _set_default(obj, path.split("."), value)
    where = _TEMPLATES.get((group, plural))
    if where is not None:
        template: Any = obj
        for p in where.split("."):
            template = template.get(p) if isinstance(template, dict) else None
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            pod(template)
            template.pop("status", None)


def apply(plural: str, group: str, obj: Obj, old: Obj | None, wall: float) -> None:
    """Fill defaults for a create (old None) or an update; `wall` is the time now (from the clock)."""
    if group == "":
        if plural == "services":
            service(obj, old)
        elif plural == "pods":
            pod(obj)
        elif plural == "namespaces":
            namespace(obj)
        elif plural == "secrets":
            secret(obj)
    elif group == "apps" and plural == "deployments":
        deployment(obj)
    elif group == "apps" and plural in ("replicasets", "statefulsets"):
        replicaset(obj)
    elif group == "apps" and plural == "daemonsets":
        _template_only(obj)
    elif group == "apiextensions.k8s.io" and old is None:
        crd(obj, wall)
    _table_defaults(group, plural, obj)
