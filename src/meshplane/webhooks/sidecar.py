"""The injected parts of a pod, after Istio's injection-template.yaml (sidecar template, no CNI):
the `istio-init` traffic-capture init container, the `istio-proxy` container running the agent,
their volumes, and the labels and annotations injection adds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshplane.model import injection
from meshplane.webhooks import errors, proxyconfig
from meshplane.webhooks.settings import DEFAULT_CLUSTER_ID, InjectionSettings

PROXY_CONTAINER = "istio-proxy"
INIT_CONTAINER = "istio-init"
PROXY_UID = 1337
DEFAULT_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "2000m", "memory": "1024Mi"},
}


# Istio's annotation (and the proxy metadata it becomes): REDIRECT captures with istio-iptables,
# NONE leaves the pod's traffic alone (no istio-init) and the sidecar gets the explicit layout.
INTERCEPTION_ANNOTATION = "sidecar.istio.io/interceptionMode"
INTERCEPTION_MODES = ("REDIRECT", "NONE")


def interception_mode(pod: Mapping[str, Any]) -> str:
    """The pod's interception mode; TPROXY (which istio-iptables here refuses) and unknown values
    are refused with the annotation named rather than injected into a pod that cannot start."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    mode = str(annotations.get(INTERCEPTION_ANNOTATION) or "REDIRECT")
    if mode not in INTERCEPTION_MODES:
        what = "is not implemented" if mode == "TPROXY" else "is not a mode"
        raise errors.WebhookError(
            f"annotation {INTERCEPTION_ANNOTATION}: {mode[:40]!r} {what} (use REDIRECT or NONE)"
        )
    return mode


@dataclass(frozen=True, slots=True)
class DeployMeta:
    """The workload a pod belongs to (Istio's GetDeployMetaFromPod)."""

    name: str
    namespace: str
    kind: str = "Pod"
    api_version: str = "v1"


def deploy_meta(pod: Mapping[str, Any], namespace: str) -> DeployMeta:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = meta.get("name") or ""
    if not meta.get("generateName"):
        return DeployMeta(name, namespace)
    for ref in meta.get("ownerReferences") or []:
        if not isinstance(ref, Mapping) or ref.get("controller") is not True:
            continue
        kind, api, owner = str(ref.get("kind", "")), str(ref.get("apiVersion", "")), str(ref.get("name", ""))
        pth = labels.get("pod-template-hash", "")
        if kind == "ReplicaSet" and pth and owner.endswith(pth):
            return DeployMeta(owner.removesuffix(f"-{pth}"), namespace, "Deployment", api)
        if kind == "Job" and labels.get("controller-uid"):
            base, _, suffix = owner.rpartition("-")
            if base and suffix.isdigit():
                return DeployMeta(base, namespace, "CronJob", "batch/v1")
        return DeployMeta(owner, namespace, kind, api)
    return DeployMeta(name, namespace)


@dataclass(frozen=True, slots=True)
class Injected:
    init_containers: list[dict[str, Any]]
    containers: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)


def _field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _app_containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = pod.get("spec") or {}
    return [
        c for c in spec.get("containers") or [] if isinstance(c, Mapping) and c.get("name") != PROXY_CONTAINER
    ]


def _pod_ports(pod: Mapping[str, Any]) -> str:
    ports = [p for c in _app_containers(pod) for p in c.get("ports") or [] if isinstance(p, Mapping)]
    return json.dumps(ports, separators=(",", ":"), sort_keys=True)


def proxy_env(
    pod: Mapping[str, Any], s: InjectionSettings, dm: DeployMeta, overrides: Mapping[str, str]
) -> list[dict[str, Any]]:
    """istio-proxy's env; `overrides` (cluster, network, URL params) replace and go last, sorted."""
    proxy_config: dict[str, Any] = {"discoveryAddress": s.istiod_address}
    if s.mesh_id:
        proxy_config["meshId"] = s.mesh_id
    env: list[dict[str, Any]] = [
        {"name": "JWT_POLICY", "value": "third-party-jwt"},
        {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
        {"name": "CA_ADDR", "value": s.ca_addr},
        _field("POD_NAME", "metadata.name"),
        _field("POD_NAMESPACE", "metadata.namespace"),
        _field("INSTANCE_IP", "status.podIP"),
        _field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        _field("HOST_IP", "status.hostIP"),
        {"name": "PROXY_CONFIG", "value": json.dumps(proxy_config, separators=(",", ":"), sort_keys=True)},
        {"name": "ISTIO_META_POD_PORTS", "value": _pod_ports(pod)},
        {
            "name": "ISTIO_META_APP_CONTAINERS",
            "value": ",".join(str(c.get("name")) for c in _app_containers(pod)),
        },
        {"name": "ISTIO_META_CLUSTER_ID", "value": s.cluster_name or DEFAULT_CLUSTER_ID},
        _field("ISTIO_META_NODE_NAME", "spec.nodeName"),
        {"name": "ISTIO_META_INTERCEPTION_MODE", "value": interception_mode(pod)},
    ]
    if s.proxy_version:
        # Istio's proxyv2 image carries this as ENV; injecting it gives every proxy image (meshplane's,
        # the lab's) the version istiod reads from node metadata (ISTIO_VERSION) and proxy-status shows
        env.append({"name": "ISTIO_META_ISTIO_VERSION", "value": s.proxy_version})
    if s.network:
        env.append({"name": "ISTIO_META_NETWORK", "value": s.network})
    if dm.name:
        env.append({"name": "ISTIO_META_WORKLOAD_NAME", "value": dm.name})
        env.append(
            {
                "name": "ISTIO_META_OWNER",
                "value": f"kubernetes://apis/{dm.api_version}/namespaces/{dm.namespace or 'default'}/"
                f"{dm.kind.lower()}s/{dm.name}",
            }
        )
    env.append({"name": "ISTIO_META_MESH_ID", "value": s.mesh_id or s.trust_domain})
    env.append({"name": "TRUST_DOMAIN", "value": s.trust_domain})
    # the pod's proxy.istio.io/config proxyMetadata, after the template's own (Istio's order)
    metadata = proxyconfig.metadata(pod)
    env = [e for e in env if e["name"] not in metadata] + [
        {"name": k, "value": v} for k, v in metadata.items()
    ]
    env = [e for e in env if e["name"] not in overrides]
    env += [{"name": k, "value": overrides[k]} for k in sorted(overrides)]
    return env


def _init_container(s: InjectionSettings, pod: Mapping[str, Any]) -> dict[str, Any]:
    excluded = f"15090,15021,{s.status_port}" if s.status_port else "15090,15021"
    c: dict[str, Any] = {
        "name": INIT_CONTAINER,
        "image": s.proxy_image,
        "args": [
            "istio-iptables",
            "-p",
            "15001",
            "-z",
            "15006",
            "-u",
            str(PROXY_UID),
            "-m",
            "REDIRECT",
            "-i",
            "*",
            "-x",
            "",
            "-b",
            "*",
            "-d",
            excluded,
            f"--log_output_level={s.log_level}",
        ],
        "resources": dict(s.proxy_resources or DEFAULT_RESOURCES),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": False,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "runAsUser": 0,
        },
    }
    if s.image_pull_policy:
        c["imagePullPolicy"] = s.image_pull_policy
    metadata = proxyconfig.metadata(pod)
    if metadata:  # e.g. ISTIO_META_DNS_CAPTURE: istio-iptables' --redirect-dns
        c["env"] = [{"name": k, "value": v} for k, v in metadata.items()]
    return c


def _proxy_container(
    pod: Mapping[str, Any], s: InjectionSettings, dm: DeployMeta, overrides: Mapping[str, str]
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": PROXY_CONTAINER,
        "image": s.proxy_image,
        "ports": [{"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}],
        "args": [
            "proxy",
            "sidecar",
            "--domain",
            f"$(POD_NAMESPACE).svc.{s.cluster_domain}",
            f"--proxyLogLevel={s.proxy_log_level}",
            f"--proxyComponentLogLevel={s.proxy_component_log_level}",
            f"--log_output_level={s.log_level}",
        ],
        "env": proxy_env(pod, s, dm, overrides),
        "readinessProbe": {
            "httpGet": {"path": "/healthz/ready", "port": 15021},
            "initialDelaySeconds": 1,
            "periodSeconds": 15,
            "timeoutSeconds": 3,
            "failureThreshold": 4,
        },
        "resources": dict(s.proxy_resources or DEFAULT_RESOURCES),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsGroup": PROXY_UID,
            "runAsNonRoot": True,
            "runAsUser": PROXY_UID,
        },
        "volumeMounts": [
            {"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"},
            {"name": "credential-socket", "mountPath": "/var/run/secrets/credential-uds"},
            {"name": "workload-certs", "mountPath": "/var/run/secrets/workload-spiffe-credentials"},
            {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"},
            {"name": "istio-data", "mountPath": "/var/lib/istio/data"},
            {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
            {"name": "istio-token", "mountPath": "/var/run/secrets/tokens"},
            {"name": "istio-podinfo", "mountPath": "/etc/istio/pod"},
        ],
    }
    if s.image_pull_policy:
        c["imagePullPolicy"] = s.image_pull_policy
    return c


def volumes(s: InjectionSettings) -> list[dict[str, Any]]:
    return [
        {"name": "workload-socket", "emptyDir": {}},
        {"name": "credential-socket", "emptyDir": {}},
        {"name": "workload-certs", "emptyDir": {}},
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {"name": "istio-data", "emptyDir": {}},
        {
            "name": "istio-podinfo",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                ]
            },
        },
        {
            "name": "istio-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "path": "istio-token",
                            "expirationSeconds": 43200,
                            "audience": s.token_audience,
                        }
                    }
                ]
            },
        },
        {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
    ]


def render(
    pod: Mapping[str, Any], s: InjectionSettings, dm: DeployMeta, overrides: Mapping[str, str]
) -> Injected:
    """The template's output for this pod (Istio's templatePod), before merging into the pod."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    add_labels = {
        "security.istio.io/tlsMode": labels.get("security.istio.io/tlsMode") or "istio",
        "service.istio.io/canonical-name": labels.get("service.istio.io/canonical-name")
        or labels.get("app.kubernetes.io/name")
        or labels.get("app")
        or dm.name,
        "service.istio.io/canonical-revision": labels.get("service.istio.io/canonical-revision")
        or labels.get("app.kubernetes.io/version")
        or labels.get("version")
        or "latest",
    }
    if "ISTIO_META_NETWORK" in overrides:
        add_labels[injection.NETWORK_LABEL] = overrides["ISTIO_META_NETWORK"]
    add_annotations: dict[str, str] = {}
    apps = _app_containers(pod)
    if apps:
        first = str(apps[0].get("name"))
        for key in (
            "kubectl.kubernetes.io/default-logs-container",
            "kubectl.kubernetes.io/default-container",
        ):
            if key not in annotations:
                add_annotations[key] = first
    return Injected(
        init_containers=[] if interception_mode(pod) == "NONE" else [_init_container(s, pod)],
        containers=[_proxy_container(pod, s, dm, overrides)],
        volumes=volumes(s),
        labels=add_labels,
        annotations=add_annotations,
    )
