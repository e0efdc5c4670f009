"""The control plane's objects (Pilot component): istiod Deployment and Service, mesh and injector
ConfigMaps, the injection MutatingWebhookConfiguration; and the Base validating webhook."""

from __future__ import annotations

import json
from typing import Any

import yaml

from meshplane.installer import config
from meshplane.model import injection

ISTIOD_SERVICE_ACCOUNT = "istiod"
INJECTOR_VALUES_MOUNT = "/var/lib/istio/inject"
DEFAULT_PILOT_RESOURCES = {"requests": {"cpu": "500m", "memory": "2048Mi"}}


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def injector_name(cfg: config.InstallConfig) -> str:
    base = f"istio-sidecar-injector-{cfg.revision}" if cfg.revision else "istio-sidecar-injector"
    return base if cfg.namespace == "istio-system" else f"{base}-{cfg.namespace}"


def _suffixed(name: str, cfg: config.InstallConfig) -> str:
    return f"{name}-{cfg.revision}" if cfg.revision else name


def mesh_config(cfg: config.InstallConfig) -> dict[str, Any]:
    """The MeshConfig written to ConfigMap `istio` key `mesh` (the user's meshConfig over the defaults)."""
    default_config: dict[str, Any] = {"discoveryAddress": cfg.discovery_address}
    if cfg.mesh_id:
        default_config["meshId"] = cfg.mesh_id
    mesh: dict[str, Any] = {
        "defaultConfig": default_config,
        "enablePrometheusMerge": True,
        "rootNamespace": cfg.namespace,
        "trustDomain": cfg.trust_domain,
    }
    user = dict(cfg.mesh_config)
    if "defaultConfig" in user:
        mesh["defaultConfig"] = {**default_config, **user.pop("defaultConfig")}
    mesh.update(user)
    return mesh


def mesh_configmap(cfg: config.InstallConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": _suffixed("istio", cfg),
            "namespace": cfg.namespace,
            "labels": {"release": "istio", "app.kubernetes.io/name": "istiod"},
        },
        "data": {
            "mesh": yaml.safe_dump(mesh_config(cfg), sort_keys=True, default_flow_style=False),
            "meshNetworks": "networks: {}",
        },
    }


def injector_values(cfg: config.InstallConfig) -> dict[str, Any]:
    """The values the injector renders sidecars with (Istio's `istio-sidecar-injector` ConfigMap `values`)."""
    glob = dict(cfg.values.get("global") or {})
    glob["hub"] = cfg.hub
    glob["tag"] = cfg.tag
    glob["istioNamespace"] = cfg.namespace
    glob["trustDomain"] = cfg.trust_domain
    glob["meshID"] = cfg.mesh_id
    glob["network"] = cfg.network
    glob["multiCluster"] = {**(glob.get("multiCluster") or {}), "clusterName": cfg.cluster_id}
    glob["caAddress"] = cfg.ca_address
    glob["proxy"] = {**(glob.get("proxy") or {}), "image": cfg.proxy_image}
    return {
        "global": glob,
        "revision": cfg.revision,
        "discoveryAddress": cfg.discovery_address,
        "sidecarInjectorWebhook": {"enableNamespacesByDefault": cfg.enable_namespaces_by_default},
    }


def injector_configmap(cfg: config.InstallConfig) -> dict[str, Any]:
    policy = {
        "policy": "enabled",
        "alwaysInjectSelector": [],
        "neverInjectSelector": [],
        "injectedAnnotations": {},
        "defaultTemplates": ["sidecar"],
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": _suffixed("istio-sidecar-injector", cfg),
            "namespace": cfg.namespace,
            "labels": {"release": "istio", "app.kubernetes.io/name": "istiod"},
        },
        "data": {
            "config": yaml.safe_dump(policy, sort_keys=True),
            "values": json.dumps(injector_values(cfg), sort_keys=True, indent=2),
        },
    }


def values_configmap(cfg: config.InstallConfig) -> dict[str, Any]:
    """ConfigMap `values`: a dump of the merged values, for debugging only (as Istio's)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": _suffixed("values", cfg),
            "namespace": cfg.namespace,
            "labels": {"release": "istio", "app.kubernetes.io/name": "istiod"},
        },
        "data": {"merged-values": json.dumps(cfg.values, sort_keys=True, indent=2)},
    }


def _discovery_env(cfg: config.InstallConfig) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "REVISION", "value": cfg.rev_label},
        {"name": "JWT_POLICY", "value": "third-party-jwt"},
        {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
        _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    ]
    env += [{"name": k, "value": v} for k, v in cfg.pilot_env.items()]
    env += [
        {"name": "INJECTION_WEBHOOK_CONFIG_NAME", "value": injector_name(cfg)},
        {"name": "ISTIOD_ADDR", "value": cfg.discovery_address},
        {"name": "CLUSTER_ID", "value": cfg.cluster_id},
        {"name": "TRUST_DOMAIN", "value": cfg.trust_domain},
    ]
    env += [{"name": k, "value": v} for k, v in (("NETWORK", cfg.network), ("MESH_ID", cfg.mesh_id)) if v]
    # components.pilot.k8s.env overrides by name, like Istio's k8s overlay
    overrides = {e["name"]: e for e in cfg.pilot_k8s.env}
    env = [overrides.pop(e["name"], e) for e in env]
    env += [{**e, "value": config.go_str(e["value"])} if "value" in e else e for e in overrides.values()]
    return env


def _discovery_args(cfg: config.InstallConfig) -> list[str]:
    # plaintext xDS (15010) is for local debugging only; the deployed control plane serves TLS on 15012
    return ["discovery", "--disable-plaintext-xds"]


def deployment(cfg: config.InstallConfig) -> dict[str, Any]:
    k8s = cfg.pilot_k8s
    selector = {"app": "istiod", "istio.io/rev": cfg.rev_label} if cfg.revision else {"istio": "pilot"}
    pod_labels = {
        "app": "istiod",
        "istio.io/rev": cfg.rev_label,
        "istio": "istiod" if cfg.revision else "pilot",
        "sidecar.istio.io/inject": "false",
    }
    annotations = {
        "prometheus.io/port": "15014",
        "prometheus.io/scrape": "true",
        "sidecar.istio.io/inject": "false",
    }
    annotations.update(cfg.pilot_values.get("podAnnotations") or {})
    annotations.update(k8s.pod_annotations)
    resources = k8s.resources or cfg.pilot_values.get("resources") or DEFAULT_PILOT_RESOURCES
    container: dict[str, Any] = {
        "name": "discovery",
        "image": cfg.pilot_image,
        "args": _discovery_args(cfg),
        "ports": [
            {"containerPort": 8080, "name": "http-debug", "protocol": "TCP"},
            {"containerPort": 15010, "name": "grpc-xds", "protocol": "TCP"},
            {"containerPort": 15012, "name": "tls-xds", "protocol": "TCP"},
            {"containerPort": 15017, "name": "https-webhooks", "protocol": "TCP"},
            {"containerPort": 15014, "name": "http-monitoring", "protocol": "TCP"},
        ],
        # meshplane serves /ready on its monitoring port (Istio's pilot on 8080)
        "readinessProbe": k8s.readiness_probe
        or {
            "httpGet": {"path": "/ready", "port": 15014},
            "initialDelaySeconds": 1,
            "periodSeconds": 3,
            "timeoutSeconds": 5,
        },
        "env": _discovery_env(cfg),
        "resources": resources,
        "securityContext": k8s.security_context
        or {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsUser": 1337,
            "runAsGroup": 1337,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "istio-token", "mountPath": "/var/run/secrets/tokens", "readOnly": True},
            {"name": "local-certs", "mountPath": "/var/run/secrets/istio-dns"},
            {"name": "cacerts", "mountPath": "/etc/cacerts", "readOnly": True},
            {"name": "istio-kubeconfig", "mountPath": "/var/run/secrets/remote", "readOnly": True},
            {"name": "inject", "mountPath": INJECTOR_VALUES_MOUNT, "readOnly": True},
            {"name": "config-volume", "mountPath": "/etc/istio/config"},
        ],
    }
    pull = k8s.image_pull_policy or cfg.image_pull_policy
    if pull:
        container["imagePullPolicy"] = pull
    pod_spec: dict[str, Any] = {
        "serviceAccountName": ISTIOD_SERVICE_ACCOUNT,
        "containers": [container],
        "volumes": [
            {"name": "local-certs", "emptyDir": {"medium": "Memory"}},
            {
                "name": "istio-token",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": cfg.token_audience,
                                "expirationSeconds": 43200,
                                "path": "istio-token",
                            }
                        }
                    ]
                },
            },
            {"name": "cacerts", "secret": {"secretName": "cacerts", "optional": True}},
            {"name": "istio-kubeconfig", "secret": {"secretName": "istio-kubeconfig", "optional": True}},
            {"name": "inject", "configMap": {"name": _suffixed("istio-sidecar-injector", cfg)}},
            {"name": "config-volume", "configMap": {"name": _suffixed("istio", cfg)}},
        ],
    }
    _pod_extras(pod_spec, k8s, cfg)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": cfg.istiod_name,
            "namespace": cfg.namespace,
            "labels": {
                "app": "istiod",
                "istio": "pilot",
                "release": "istio",
                "app.kubernetes.io/name": "istiod",
                **(cfg.pilot_values.get("deploymentLabels") or {}),
            },
        },
        "spec": {
            "replicas": cfg.pilot_replicas,
            "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": pod_labels, "annotations": annotations}, "spec": pod_spec},
        },
    }


def _pod_extras(pod_spec: dict[str, Any], k8s: config.K8s, cfg: config.InstallConfig) -> None:
    if k8s.node_selector:
        pod_spec["nodeSelector"] = dict(k8s.node_selector)
    if k8s.affinity:
        pod_spec["affinity"] = k8s.affinity
    if k8s.tolerations:
        pod_spec["tolerations"] = list(k8s.tolerations)
    if cfg.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in cfg.image_pull_secrets]


def service(cfg: config.InstallConfig) -> dict[str, Any]:
    selector = (
        {"app": "istiod", "istio.io/rev": cfg.rev_label}
        if cfg.revision
        else {"app": "istiod", "istio": "pilot"}
    )
    svc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": cfg.istiod_name,
            "namespace": cfg.namespace,
            "labels": {
                "app": "istiod",
                "istio": "pilot",
                "release": "istio",
                "app.kubernetes.io/name": "istiod",
            },
        },
        "spec": {
            "ports": [
                {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
            ],
            "selector": selector,
        },
    }
    annotations = dict(cfg.pilot_values.get("serviceAnnotations") or {})
    annotations.update(cfg.pilot_k8s.service_annotations)
    if annotations:
        svc["metadata"]["annotations"] = annotations
    return svc


def _client_config(cfg: config.InstallConfig, path: str, url: str, ca_bundle: str) -> dict[str, Any]:
    cc: dict[str, Any]
    if url:
        cc = {"url": url}
    else:
        cc = {"service": {"name": cfg.istiod_name, "namespace": cfg.namespace, "path": path, "port": 443}}
    if ca_bundle:
        cc["caBundle"] = ca_bundle
    return cc


def mutating_webhook(cfg: config.InstallConfig) -> dict[str, Any]:
    """`istio-sidecar-injector`: SPEC §6's entries; caBundle left for the control plane to patch."""
    client = _client_config(cfg, cfg.injection_path, cfg.injection_url, cfg.injection_ca_bundle)
    webhooks = []
    for entry in injection.entries(cfg.revision, cfg.enable_namespaces_by_default):
        webhooks.append(
            {
                "name": entry.name,
                "clientConfig": json.loads(json.dumps(client)),
                "sideEffects": "None",
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ],
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "admissionReviewVersions": ["v1"],
                "namespaceSelector": {"matchExpressions": [r.to_dict() for r in entry.namespace_selector]},
                "objectSelector": {"matchExpressions": [r.to_dict() for r in entry.object_selector]},
            }
        )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": injector_name(cfg), "labels": {"app": "sidecar-injector", "release": "istio"}},
        "webhooks": webhooks,
    }


VALIDATED_GROUPS = ["security.istio.io", "networking.istio.io", "telemetry.istio.io", "extensions.istio.io"]


def validator_name(cfg: config.InstallConfig) -> str:
    rev = "" if cfg.revision in ("", "default") else f"-{cfg.revision}"
    return f"istio-validator{rev}-{cfg.namespace}"


def validator_webhook(cfg: config.InstallConfig) -> dict[str, Any]:
    """istio-discovery's `istio-validator-<ns>` (validatingwebhookconfiguration.yaml): webhook
    `rev.validation.istio.io` for objects labelled with this revision, failurePolicy Ignore and no
    caBundle until the control plane's validation controller (security/webhookpatch.py
    ValidationPatcher) patches both once `/validate` answers."""
    rev = cfg.revision or "default"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": validator_name(cfg),
            "labels": {"app": "istiod", "release": "istio", "istio": "istiod", "istio.io/rev": rev},
        },
        "webhooks": [
            {
                "name": "rev.validation.istio.io",
                "clientConfig": _client_config(cfg, "/validate", cfg.validation_url, ""),
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": VALIDATED_GROUPS,
                        "apiVersions": ["*"],
                        "resources": ["*"],
                    }
                ],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "objectSelector": {
                    "matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": [rev]}]
                },
            }
        ],
    }


def validating_webhook(cfg: config.InstallConfig) -> dict[str, Any]:
    """Base's `istiod-default-validator` (failurePolicy Ignore on a fresh install, as Istio's); its
    `istio.io/rev` label (base/templates/default.yaml) lets the validation controller patch it."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": "istiod-default-validator",
            "labels": {
                "app": "istiod",
                "istio": "istiod",
                "istio.io/tag": "default",
                "istio.io/rev": cfg.revision or "default",
            },
        },
        "webhooks": [
            {
                "name": "validation.istio.io",
                "clientConfig": _client_config(cfg, "/validate", cfg.validation_url, ""),
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": [
                            "security.istio.io",
                            "networking.istio.io",
                            "telemetry.istio.io",
                            "extensions.istio.io",
                        ],
                        "apiVersions": ["*"],
                        "resources": ["*"],
                    }
                ],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    }
