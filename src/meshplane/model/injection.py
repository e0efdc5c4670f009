"""Istio's sidecar-injection selectors (SPEC §6), rendered by the installer.

The installer renders them into the MutatingWebhookConfiguration, and each cluster's API server
evaluates them against its own namespaces; the injection webhook does not re-evaluate them (it
serves every cluster, and only the pod's own API server knows the pod's namespace labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NS_INJECTION_LABEL = "istio-injection"
REV_LABEL = "istio.io/rev"
INJECT_LABEL = "sidecar.istio.io/inject"
STATUS_ANNOTATION = "sidecar.istio.io/status"
NETWORK_LABEL = "topology.istio.io/network"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# Never injected (pkg/kube/inject IgnoredNamespaces).
IGNORED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        raise ValueError(f"unknown selector operator {self.operator!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "operator": self.operator}
        if self.operator in ("In", "NotIn"):
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True, slots=True)
class WebhookEntry:
    """One webhook of the injector configuration: a name prefix and its two selectors."""

    prefix: str
    namespace_selector: tuple[Requirement, ...]
    object_selector: tuple[Requirement, ...]

    @property
    def name(self) -> str:
        return f"{self.prefix}sidecar-injector.istio.io"

    def matches(self, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
        return all(r.matches(namespace_labels) for r in self.namespace_selector) and all(
            r.matches(pod_labels) for r in self.object_selector
        )


def entries(revision: str = "", namespaces_by_default: bool = False) -> tuple[WebhookEntry, ...]:
    """The webhook entries Istio renders for `revision` ("" = the default revision)."""
    rev = revision or "default"
    not_false = Requirement(INJECT_LABEL, "NotIn", ("false",))
    out = [
        WebhookEntry(
            "rev.namespace.",
            (Requirement(REV_LABEL, "In", (rev,)), Requirement(NS_INJECTION_LABEL, "DoesNotExist")),
            (not_false,),
        ),
        WebhookEntry(
            "rev.object.",
            (Requirement(REV_LABEL, "DoesNotExist"), Requirement(NS_INJECTION_LABEL, "DoesNotExist")),
            (not_false, Requirement(REV_LABEL, "In", (rev,))),
        ),
    ]
    if not revision:
        out += [
            WebhookEntry("namespace.", (Requirement(NS_INJECTION_LABEL, "In", ("enabled",)),), (not_false,)),
            WebhookEntry(
                "object.",
                (Requirement(NS_INJECTION_LABEL, "DoesNotExist"), Requirement(REV_LABEL, "DoesNotExist")),
                (Requirement(INJECT_LABEL, "In", ("true",)), Requirement(REV_LABEL, "DoesNotExist")),
            ),
        ]
        if namespaces_by_default:
            out.append(
                WebhookEntry(
                    "auto.",
                    (
                        Requirement(NS_INJECTION_LABEL, "DoesNotExist"),
                        Requirement(REV_LABEL, "DoesNotExist"),
                        Requirement(NAMESPACE_NAME_LABEL, "NotIn", IGNORED_NAMESPACES),
                    ),
                    (Requirement(INJECT_LABEL, "DoesNotExist"), Requirement(REV_LABEL, "DoesNotExist")),
                )
            )
    return tuple(out)


def selected(
    namespace_labels: Mapping[str, str],
    pod_labels: Mapping[str, str],
    revision: str = "",
    by_default: bool = False,
) -> bool:
    """True when any injector webhook entry of `revision` would send this pod to the webhook."""
    return any(e.matches(namespace_labels, pod_labels) for e in entries(revision, by_default))
