"""Gateway components (`components.ingressGateways[]`, `egressGateways[]`): the proxy in router mode.

Istio's gateway pods get their sidecar fields from the injector (`injectionTemplate: gateway`);
meshplane renders the whole pod here instead, so a gateway does not depend on the webhook being up.
The values the injector would have added (cluster ID, mesh ID, trust domain, network) come from the
install or, when the install leaves them out (as gen-eastwest-gateway does), from the control plane
already installed in the cluster (`MeshDefaults`, read from its injector ConfigMap).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from meshplane.installer import config

_INGRESS_PORTS = (
    config.ServicePort("status-port", 15021, 15021),
    config.ServicePort("http2", 80, 8080),
    config.ServicePort("https", 443, 8443),
)
_EGRESS_PORTS = (config.ServicePort("http2", 80, 8080), config.ServicePort("https", 443, 8443))


@dataclass(frozen=True, slots=True)
class MeshDefaults:
    """Mesh-wide values of the control plane already in a cluster (used when the install omits them)."""

    cluster_id: str = ""
    mesh_id: str = ""
    network: str = ""
    trust_domain: str = ""

    @classmethod
    def from_injector_values(cls, values_json: str) -> MeshDefaults:
        """Parse the `values` key of an `istio-sidecar-injector` ConfigMap (bad input → empty defaults)."""
        try:
            values = json.loads(values_json)
        except (TypeError, ValueError):
            return cls()
        glob = values.get("global") if isinstance(values, dict) else None
        if not isinstance(glob, dict):
            return cls()

        def s(v: Any) -> str:
            return v if isinstance(v, str) else ""

        mc = glob.get("multiCluster")
        mc = mc if isinstance(mc, dict) else {}
        return cls(
            cluster_id=s(mc.get("clusterName")),
            mesh_id=s(glob.get("meshID")),
            network=s(glob.get("network")),
            trust_domain=s(glob.get("trustDomain")),
        )


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _env(gw: config.Gateway, cfg: config.InstallConfig, mesh: MeshDefaults) -> list[dict[str, Any]]:
    cluster = cfg.cluster_name or mesh.cluster_id or config.DEFAULT_CLUSTER_ID
    trust = mesh.trust_domain or cfg.trust_domain
    mesh_id = cfg.mesh_id or mesh.mesh_id or trust
    network = cfg.network or mesh.network
    discovery = cfg.discovery_address
    env: list[dict[str, Any]] = [
        {"name": "JWT_POLICY", "value": "third-party-jwt"},
        {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
        {"name": "CA_ADDR", "value": cfg.ca_address or discovery},
        _field_env("NODE_NAME", "spec.nodeName"),
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
        _field_env("INSTANCE_IP", "status.podIP"),
        _field_env("HOST_IP", "status.hostIP"),
        _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        {"name": "PROXY_CONFIG", "value": json.dumps({"discoveryAddress": discovery}, separators=(",", ":"))},
        {"name": "ISTIO_META_WORKLOAD_NAME", "value": gw.name},
        {
            "name": "ISTIO_META_OWNER",
            "value": f"kubernetes://apis/apps/v1/namespaces/{gw.namespace}/deployments/{gw.name}",
        },
        {"name": "ISTIO_META_MESH_ID", "value": mesh_id},
        {"name": "TRUST_DOMAIN", "value": trust},
        {"name": "ISTIO_META_UNPRIVILEGED_POD", "value": "true"},
        {"name": "ISTIO_META_CLUSTER_ID", "value": cluster},
        _field_env("ISTIO_META_NODE_NAME", "spec.nodeName"),
    ]
    if network:
        env.append({"name": "ISTIO_META_NETWORK", "value": network})
    # k8s.env entries override same-named ones and are appended otherwise (Istio's k8s overlay)
    overrides = {e["name"]: e for e in gw.k8s.env}
    env = [overrides.pop(e["name"], e) for e in env]
    env += [{**e, "value": config.go_str(e["value"])} if "value" in e else e for e in overrides.values()]
    return env


def _ports(gw: config.Gateway) -> tuple[config.ServicePort, ...]:
    if gw.k8s.service_ports:
        return gw.k8s.service_ports
    return _INGRESS_PORTS if gw.component == "IngressGateways" else _EGRESS_PORTS


def _token_volume(audience: str) -> dict[str, Any]:
    source = {
        "serviceAccountToken": {"audience": audience, "expirationSeconds": 43200, "path": "istio-token"}
    }
    return {"name": "istio-token", "projected": {"sources": [source]}}


def objects(gw: config.Gateway, cfg: config.InstallConfig, mesh: MeshDefaults) -> list[dict[str, Any]]:
    """ServiceAccount, SDS Role/RoleBinding, Deployment and Service of one gateway."""
    sa = f"{gw.name}-service-account"
    labels = dict(gw.labels) or {"app": gw.name, "istio": gw.name.removeprefix("istio-")}
    meta_labels = {**labels, "release": "istio", "istio.io/rev": cfg.rev_label}
    ports = _ports(gw)
    container_ports = [
        {"containerPort": p.target_port if isinstance(p.target_port, int) else p.port, "protocol": p.protocol}
        for p in ports
    ]
    container_ports.append({"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"})
    container: dict[str, Any] = {
        "name": "istio-proxy",
        "image": gw.image,
        "args": [
            "proxy",
            "router",
            "--domain",
            f"$(POD_NAMESPACE).svc.{cfg.cluster_domain}",
            f"--proxyLogLevel={cfg.proxy_log_level}",
            f"--proxyComponentLogLevel={cfg.proxy_component_log_level}",
            f"--log_output_level={cfg.log_level}",
        ],
        "ports": container_ports,
        "readinessProbe": gw.k8s.readiness_probe
        or {
            "httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
            "initialDelaySeconds": 1,
            "periodSeconds": 2,
            "successThreshold": 1,
            "failureThreshold": 30,
            "timeoutSeconds": 1,
        },
        "env": _env(gw, cfg, mesh),
        "resources": gw.k8s.resources
        or {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2000m", "memory": "1024Mi"}},
        "securityContext": gw.k8s.security_context
        or {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsUser": 1337,
            "runAsGroup": 1337,
            "runAsNonRoot": True,
        },
        "volumeMounts": [
            {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
            {"name": "config-volume", "mountPath": "/etc/istio/config"},
            {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"},
            {"name": "istio-token", "mountPath": "/var/run/secrets/tokens", "readOnly": True},
            {"name": "istio-data", "mountPath": "/var/lib/istio/data"},
            {"name": "podinfo", "mountPath": "/etc/istio/pod"},
        ],
    }
    pull = gw.k8s.image_pull_policy or cfg.image_pull_policy
    if pull:
        container["imagePullPolicy"] = pull
    pod_spec: dict[str, Any] = {
        "serviceAccountName": sa,
        "securityContext": {"fsGroup": 1337, "runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": True},
        "containers": [container],
        "volumes": [
            {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
            {
                "name": "podinfo",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                    ]
                },
            },
            {"name": "istio-envoy", "emptyDir": {}},
            {"name": "istio-data", "emptyDir": {}},
            _token_volume(cfg.token_audience),
            {
                "name": "config-volume",
                "configMap": {"name": f"istio-{cfg.revision}" if cfg.revision else "istio", "optional": True},
            },
        ],
    }
    if gw.k8s.node_selector:
        pod_spec["nodeSelector"] = dict(gw.k8s.node_selector)
    if gw.k8s.affinity:
        pod_spec["affinity"] = gw.k8s.affinity
    if gw.k8s.tolerations:
        pod_spec["tolerations"] = list(gw.k8s.tolerations)
    if cfg.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in cfg.image_pull_secrets]
    pod_labels = {
        **labels,
        "sidecar.istio.io/inject": "false",
        "service.istio.io/canonical-name": gw.name,
        "service.istio.io/canonical-revision": "latest",
        "istio.io/rev": cfg.rev_label,
    }
    annotations = {
        "prometheus.io/port": "15020",
        "prometheus.io/scrape": "true",
        "prometheus.io/path": "/stats/prometheus",
        "sidecar.istio.io/inject": "false",
        **gw.k8s.pod_annotations,
    }
    svc_type = gw.k8s.service_type or ("LoadBalancer" if gw.component == "IngressGateways" else "ClusterIP")
    svc_spec: dict[str, Any] = {
        "type": svc_type,
        "selector": dict(labels),
        "ports": [
            {"name": p.name, "port": p.port, "targetPort": p.target_port, "protocol": p.protocol}
            | ({"nodePort": p.node_port} if p.node_port else {})
            for p in ports
        ],
    }
    if gw.k8s.load_balancer_ip:
        svc_spec["loadBalancerIP"] = gw.k8s.load_balancer_ip
    if gw.k8s.external_traffic_policy:
        svc_spec["externalTrafficPolicy"] = gw.k8s.external_traffic_policy
    svc_meta: dict[str, Any] = {"name": gw.name, "namespace": gw.namespace, "labels": dict(meta_labels)}
    if gw.k8s.service_annotations:
        svc_meta["annotations"] = dict(gw.k8s.service_annotations)
    role = f"{gw.name}-sds"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": sa, "namespace": gw.namespace, "labels": dict(meta_labels)},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": role, "namespace": gw.namespace, "labels": {"release": "istio"}},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role, "namespace": gw.namespace, "labels": {"release": "istio"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": gw.name, "namespace": gw.namespace, "labels": dict(meta_labels)},
            "spec": {
                "replicas": gw.k8s.replicas if gw.k8s.replicas is not None else 1,
                "selector": {"matchLabels": dict(labels)},
                "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": pod_labels, "annotations": annotations},
                    "spec": pod_spec,
                },
            },
        },
        {"apiVersion": "v1", "kind": "Service", "metadata": svc_meta, "spec": svc_spec},
    ]
