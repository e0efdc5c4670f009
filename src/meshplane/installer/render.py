"""Render an InstallConfig to the ordered list of Kubernetes objects an install applies (pure)."""

from __future__ import annotations

from typing import Any

from meshplane.installer import config, crds, gateways, labels, pilot, rbac, remote
from meshplane.model import injection

# Apply order after CRDs and namespaces: identities and config before workloads, webhooks last.
KIND_ORDER = (
    "CustomResourceDefinition",
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "EndpointSlice",
    "Deployment",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)


def namespace(name: str, network: str) -> dict[str, Any]:
    """The install namespace, labelled with its network as istioctl does; no install labels (see labels)."""
    meta: dict[str, Any] = {"name": name}
    if network:
        meta["labels"] = {injection.NETWORK_LABEL: network}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _components(cfg: config.InstallConfig, mesh: gateways.MeshDefaults) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if cfg.base_enabled:
        out += [(labels.BASE, c) for c in crds.all_crds()]
        out.append((labels.BASE, rbac.reader_service_account(cfg.namespace)))
        out.append((labels.BASE, pilot.validating_webhook(cfg)))
    if cfg.pilot_enabled:
        out += [(labels.PILOT, o) for o in rbac.reader_cluster_role(cfg.namespace, cfg.revision, cfg.remote)]
        if cfg.remote:
            if cfg.config_cluster:  # the remote also holds config: istiod's identity and RBAC, as Istio's
                out += [
                    (labels.PILOT, o)
                    for o in rbac.istiod_objects(cfg.namespace, cfg.revision, pilot.ISTIOD_SERVICE_ACCOUNT)
                ]
            out.append((labels.PILOT, remote.istiod_service(cfg)))
            slice_ = remote.istiod_endpointslice(cfg)
            if slice_ is not None:
                out.append((labels.PILOT, slice_))
        else:
            out += [
                (labels.PILOT, o)
                for o in rbac.istiod_objects(cfg.namespace, cfg.revision, pilot.ISTIOD_SERVICE_ACCOUNT)
            ]
            out.append((labels.PILOT, pilot.mesh_configmap(cfg)))
            out.append((labels.PILOT, pilot.injector_configmap(cfg)))
            out.append((labels.PILOT, pilot.deployment(cfg)))
            out.append((labels.PILOT, pilot.service(cfg)))
            out.append((labels.PILOT, pilot.validator_webhook(cfg)))
        out.append((labels.PILOT, pilot.values_configmap(cfg)))
        out.append((labels.PILOT, pilot.mutating_webhook(cfg)))
    for gw in cfg.gateways:
        out += [(gw.component, o) for o in gateways.objects(gw, cfg, mesh)]
    return out


def _stamp_pod_template(obj: dict[str, Any], component: str, cfg: config.InstallConfig) -> None:
    if obj["kind"] != "Deployment":
        return
    tmpl = obj["spec"]["template"]["metadata"].setdefault("labels", {})
    tmpl[labels.OWNER] = cfg.owner
    tmpl[labels.COMPONENT] = component


def render(cfg: config.InstallConfig, mesh: gateways.MeshDefaults | None = None) -> list[dict[str, Any]]:
    """Every object of the install, install-labelled, CRDs first, then namespaces, then the rest."""
    mesh = mesh or gateways.MeshDefaults()
    objs: list[dict[str, Any]] = []
    for component, obj in _components(cfg, mesh):
        labels.stamp(obj, labels.install_labels(component, cfg.owner, cfg.namespace, cfg.revision))
        _stamp_pod_template(obj, component, cfg)
        objs.append(obj)
    namespaces = {cfg.namespace} if objs else set()
    namespaces |= {o["metadata"]["namespace"] for o in objs if o["metadata"].get("namespace")}
    objs += [namespace(ns, cfg.network) for ns in sorted(namespaces)]
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    return sorted(objs, key=lambda o: rank.get(o["kind"], len(KIND_ORDER)))


def is_crd(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "CustomResourceDefinition"
