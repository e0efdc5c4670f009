"""From IstioOperator input to one validated, typed InstallConfig (pure; nothing touches a cluster)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshplane.installer import checks, errors, iop, profiles, schema

DEFAULT_CLUSTER_ID = "Kubernetes"  # Istio's CLUSTER_ID when clusterName is unset


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str
    protocol: str = "TCP"
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class K8s:
    """A component's `k8s` block (the subset meshplane renders)."""

    env: tuple[dict[str, Any], ...] = ()
    resources: dict[str, Any] | None = None
    replicas: int | None = None
    image_pull_policy: str = ""
    node_selector: dict[str, str] = field(default_factory=dict)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    service_annotations: dict[str, str] = field(default_factory=dict)
    affinity: Any = None
    tolerations: tuple[Any, ...] = ()
    readiness_probe: Any = None
    security_context: Any = None
    service_type: str = ""
    service_ports: tuple[ServicePort, ...] = ()
    load_balancer_ip: str = ""
    external_traffic_policy: str = ""


@dataclass(frozen=True, slots=True)
class Gateway:
    component: str  # operator.istio.io/component: IngressGateways | EgressGateways
    name: str
    namespace: str
    labels: dict[str, str]
    image: str
    k8s: K8s
    injection_template: str = ""


@dataclass(frozen=True, slots=True)
class InstallConfig:
    owner: str
    profile: str
    namespace: str
    revision: str
    hub: str
    tag: str
    pilot_image: str
    proxy_image: str
    mesh_id: str
    cluster_name: str  # "" when unset (rendered as Istio's default "Kubernetes")
    network: str
    trust_domain: str
    cluster_domain: str
    remote_pilot_address: str
    external_istiod: bool
    istiod_remote: bool
    config_cluster: bool
    injection_path: str
    injection_url: str
    injection_ca_bundle: str
    validation_url: str
    base_enabled: bool
    pilot_enabled: bool
    pilot_env: dict[str, str]
    pilot_replicas: int
    pilot_k8s: K8s
    pilot_values: dict[str, Any]
    image_pull_policy: str
    image_pull_secrets: tuple[str, ...]
    ca_address: str
    token_audience: str
    log_level: str
    proxy_log_level: str
    proxy_component_log_level: str
    mesh_config: dict[str, Any]
    gateways: tuple[Gateway, ...]
    enable_namespaces_by_default: bool
    values: dict[str, Any]

    @property
    def rev_label(self) -> str:
        return self.revision or "default"

    @property
    def istiod_name(self) -> str:
        return f"istiod-{self.revision}" if self.revision else "istiod"

    @property
    def cluster_id(self) -> str:
        return self.cluster_name or DEFAULT_CLUSTER_ID

    @property
    def discovery_address(self) -> str:
        return f"{self.istiod_name}.{self.namespace}.svc:15012"

    @property
    def remote(self) -> bool:
        return self.profile == "remote" or self.istiod_remote

    @property
    def runs_control_plane(self) -> bool:
        """True when this install deploys istiod (not the remote profile, not `empty`)."""
        return self.pilot_enabled and not self.remote


def go_str(value: Any) -> str:
    """A scalar as Go templates print it (`{{ $val }}`): true/false, 2, 1.5."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _get(tree: Mapping[str, Any], *path: str, default: Any = None) -> Any:
    node: Any = tree
    for p in path:
        if not isinstance(node, Mapping) or p not in node or node[p] is None:
            return default
        node = node[p]
    return node


def _k8s(raw: Mapping[str, Any] | None) -> K8s:
    raw = raw or {}
    svc = raw.get("service") or {}
    ports = tuple(
        ServicePort(
            name=p.get("name", ""),
            port=int(p["port"]),
            target_port=p["port"] if p.get("targetPort") is None else p["targetPort"],
            protocol=p.get("protocol") or "TCP",
            node_port=p.get("nodePort"),
        )
        for p in svc.get("ports") or []
    )
    return K8s(
        env=tuple({k: v for k, v in e.items() if v is not None} for e in raw.get("env") or []),
        resources=raw.get("resources"),
        replicas=raw.get("replicaCount"),
        image_pull_policy=raw.get("imagePullPolicy") or "",
        node_selector=dict(raw.get("nodeSelector") or {}),
        pod_annotations=dict(raw.get("podAnnotations") or {}),
        service_annotations=dict(raw.get("serviceAnnotations") or {}),
        affinity=raw.get("affinity"),
        tolerations=tuple(raw.get("tolerations") or ()),
        readiness_probe=raw.get("readinessProbe"),
        security_context=raw.get("securityContext"),
        service_type=svc.get("type") or "",
        service_ports=ports,
        load_balancer_ip=svc.get("loadBalancerIP") or "",
        external_traffic_policy=svc.get("externalTrafficPolicy") or "",
    )


def _image(hub: str, name: str, tag: str) -> str:
    return name if "/" in name else f"{hub}/{name}:{tag}"


def _gateways(spec: Mapping[str, Any], namespace: str, hub: str, tag: str, proxy: str) -> tuple[Gateway, ...]:
    out: list[Gateway] = []
    values_gw = _get(spec, "values", "gateways", default={})
    for key, component, vkey in (
        ("ingressGateways", "IngressGateways", "istio-ingressgateway"),
        ("egressGateways", "EgressGateways", "istio-egressgateway"),
    ):
        for raw in _get(spec, "components", key, default=[]):
            if raw.get("enabled") is False:
                continue
            ghub = raw.get("hub") or hub
            gtag = go_str(raw.get("tag")) if raw.get("tag") is not None else tag
            out.append(
                Gateway(
                    component=component,
                    name=raw["name"],
                    namespace=raw.get("namespace") or namespace,
                    labels=dict(raw.get("label") or {}),
                    image=_image(ghub, proxy, gtag),
                    k8s=_k8s(raw.get("k8s")),
                    injection_template=_get(values_gw, vkey, "injectionTemplate", default=""),
                )
            )
    return tuple(out)


def _pilot_env(values: Mapping[str, Any]) -> dict[str, str]:
    env = {str(k): go_str(v) for k, v in (_get(values, "pilot", "env", default={}) or {}).items()}
    sampling = _get(values, "pilot", "traceSampling")
    if sampling is not None and "PILOT_TRACE_SAMPLING" not in env:
        env["PILOT_TRACE_SAMPLING"] = go_str(sampling)
    if _get(values, "global", "externalIstiod", default=False) and "EXTERNAL_ISTIOD" not in env:
        env["EXTERNAL_ISTIOD"] = "true"  # the chart sets it from the global unless pilot.env does
    return env


def from_spec(spec: Mapping[str, Any], owner: str = "") -> InstallConfig:
    """Typed config from a final (profile-merged, validated) spec tree."""
    values = _get(spec, "values", default={})
    glob = _get(values, "global", default={})
    hub = glob.get("hub") or profiles.DEFAULT_HUB
    tag = go_str(glob["tag"]) if glob.get("tag") is not None else profiles.DEFAULT_TAG
    namespace = spec.get("namespace") or glob.get("istioNamespace") or "istio-system"
    pilot_comp = _get(spec, "components", "pilot", default={})
    phub = pilot_comp.get("hub") or _get(values, "pilot", "hub", default="") or hub
    ptag_raw = pilot_comp.get("tag") if pilot_comp.get("tag") is not None else _get(values, "pilot", "tag")
    ptag = go_str(ptag_raw) if ptag_raw is not None else tag
    proxy_name = _get(glob, "proxy", "image", default=profiles.PROXY_IMAGE)
    env = _pilot_env(values)
    mesh = dict(_get(spec, "meshConfig", default={}))
    trust_domain = mesh.get("trustDomain") or glob.get("trustDomain") or "cluster.local"
    pilot_k8s = _k8s(pilot_comp.get("k8s"))
    return InstallConfig(
        owner=owner or "unknown",
        profile=spec.get("profile") or "default",
        namespace=namespace,
        revision=spec.get("revision") or _get(values, "revision", default="") or "",
        hub=hub,
        tag=tag,
        pilot_image=_image(phub, _get(values, "pilot", "image", default=profiles.PILOT_IMAGE), ptag),
        proxy_image=_image(hub, proxy_name, tag),
        mesh_id=glob.get("meshID") or "",
        cluster_name=_get(glob, "multiCluster", "clusterName", default=""),
        network=glob.get("network") or "",
        trust_domain=trust_domain,
        cluster_domain=_get(glob, "proxy", "clusterDomain", default="cluster.local"),
        remote_pilot_address=glob.get("remotePilotAddress") or "",
        external_istiod=checks.parse_bool(env.get("EXTERNAL_ISTIOD", "")),
        istiod_remote=bool(_get(values, "istiodRemote", "enabled", default=False)),
        config_cluster=bool(glob.get("configCluster", False)),
        injection_path=_get(values, "istiodRemote", "injectionPath", default="/inject"),
        injection_url=_get(values, "istiodRemote", "injectionURL", default=""),
        injection_ca_bundle=_get(values, "istiodRemote", "injectionCABundle", default=""),
        validation_url=_get(values, "base", "validationURL", default=""),
        base_enabled=bool(_get(spec, "components", "base", "enabled", default=True)),
        pilot_enabled=pilot_comp.get("enabled") is not False
        and _get(values, "pilot", "enabled") is not False,
        pilot_env=env,
        pilot_replicas=pilot_k8s.replicas or _get(values, "pilot", "replicaCount", default=1),
        pilot_k8s=pilot_k8s,
        pilot_values=dict(_get(values, "pilot", default={})),
        image_pull_policy=glob.get("imagePullPolicy") or "",
        image_pull_secrets=tuple(glob.get("imagePullSecrets") or ()),
        ca_address=glob.get("caAddress") or "",
        token_audience=_get(glob, "sds", "token", "aud", default="istio-ca"),
        log_level=_get(glob, "logging", "level", default="default:info"),
        proxy_log_level=_get(glob, "proxy", "logLevel", default="warning"),
        proxy_component_log_level=_get(glob, "proxy", "componentLogLevel", default="misc:error"),
        mesh_config=mesh,
        gateways=_gateways(spec, namespace, hub, tag, proxy_name),
        enable_namespaces_by_default=bool(
            _get(values, "sidecarInjectorWebhook", "enableNamespacesByDefault", default=False)
        ),
        values=dict(values),
    )


def _hoist_hub_tag(user: dict[str, Any]) -> dict[str, Any]:
    """`spec.hub`/`spec.tag` are the IstioOperator spelling of values.global.hub/tag (values win)."""
    glob = dict(_get(user, "values", "global", default={}))
    for key in ("hub", "tag"):
        if user.get(key) is not None and glob.get(key) is None:
            glob[key] = user[key]
    if not glob:
        return user
    values = dict(user.get("values") or {})
    values["global"] = glob
    return {**user, "values": values}


def load(
    sources: Sequence[tuple[str, str | bytes]], sets: Sequence[str] = (), revision: str | None = None
) -> InstallConfig:
    """Parse, merge, overlay, validate and type the install input; raise ConfigError naming every problem.

    `sources` are (name, text) pairs in `-f` order (name is the file name or `<stdin>`).
    """
    issues: list[errors.Issue] = []
    ops: list[iop.Operator] = []
    for name, text in sources:
        try:
            ops.append(iop.parse_document(text, name))
        except errors.ConfigError as e:
            issues += e.issues
    if issues:
        raise errors.ConfigError(issues)
    op = iop.merge_operators(ops)
    flags = list(sets) + ([f"revision={revision}"] if revision else [])
    user = iop.apply_sets(op.spec, flags)
    issues = schema.validate(user, schema.SPEC, "spec")
    profile = user.get("profile") or "default"
    if isinstance(profile, str) and profile not in profiles.NAMES:
        kind = (
            "an Istio profile that meshplane does not support"
            if profile in profiles.ISTIO_ONLY
            else "unknown"
        )
        issues.append(
            errors.Issue("spec.profile", f"{profile!r} is {kind}; supported: {', '.join(profiles.NAMES)}")
        )
    if issues:
        raise errors.ConfigError(issues)
    final = iop.merge(profiles.tree(profile), _hoist_hub_tag(user))
    issues = checks.semantic(final)
    if issues:
        raise errors.ConfigError(issues)
    return from_spec(final, owner=op.name)
