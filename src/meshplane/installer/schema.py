"""The IstioOperator fields meshplane supports, as a small typed schema, and the validator.

Policy for fields outside the schema: every one is an error that names its path, so nothing a user
wrote is silently ignored. When the field is a real Istio setting that meshplane does not implement,
the message says so ("an Istio setting meshplane does not support") instead of "unknown field", so a
user copying Istio docs knows the spelling is right and the feature is what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshplane.installer import errors


@dataclass(frozen=True, slots=True)
class Leaf:
    """A scalar field: `kind` is str | bool | int | num | scalar (any of those) | any (anything)."""

    kind: str


@dataclass(frozen=True, slots=True)
class Obj:
    fields: Mapping[str, Schema]
    # real Istio fields at this level that meshplane does not implement
    unsupported: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MapOf:
    value: Schema


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Schema


Schema = Leaf | Obj | MapOf | ListOf

STR = Leaf("str")
BOOL = Leaf("bool")
INT = Leaf("int")
NUM = Leaf("num")
SCALAR = Leaf("scalar")
ANY = Leaf("any")
INT_OR_STR = Leaf("int_or_str")


def _obj(unsupported: str = "", **fields: Schema) -> Obj:
    return Obj(fields=dict(fields), unsupported=frozenset(unsupported.split()))


def _with(base: Obj, **more: Schema) -> Obj:
    return Obj(fields={**base.fields, **more}, unsupported=base.unsupported)


RESOURCES = _obj(requests=MapOf(SCALAR), limits=MapOf(SCALAR))
ENV_VAR = _obj(name=STR, value=SCALAR, valueFrom=ANY)
SERVICE_PORT = _obj(name=STR, port=INT, targetPort=INT_OR_STR, protocol=STR, nodePort=INT)

K8S = _obj(
    "hpaSpec podDisruptionBudget strategy overlays volumes volumeMounts priorityClassName "
    "podSecurityContext topologySpreadConstraints",
    env=ListOf(ENV_VAR),
    resources=RESOURCES,
    replicaCount=INT,
    imagePullPolicy=STR,
    nodeSelector=MapOf(STR),
    podAnnotations=MapOf(STR),
    serviceAnnotations=MapOf(STR),
    affinity=ANY,
    tolerations=ListOf(ANY),
    readinessProbe=ANY,
    securityContext=ANY,
    service=_obj(
        "externalIPs loadBalancerSourceRanges sessionAffinity ipFamilies ipFamilyPolicy",
        type=STR,
        ports=ListOf(SERVICE_PORT),
        loadBalancerIP=STR,
        externalTrafficPolicy=STR,
    ),
)

GATEWAY_COMPONENT = _obj(
    "kubernetes",
    name=STR,
    namespace=STR,
    enabled=BOOL,
    label=MapOf(STR),
    hub=STR,
    tag=SCALAR,
    k8s=K8S,
)

COMPONENT = _obj("label", enabled=BOOL, namespace=STR, hub=STR, tag=SCALAR, k8s=K8S)

GATEWAY_VALUES = _obj(
    "autoscaleEnabled autoscaleMin autoscaleMax cpu memory podAntiAffinityLabelSelector "
    "podAntiAffinityTermLabelSelector secretVolumes zvpn runAsRoot serviceAccount rollingMaxSurge "
    "rollingMaxUnavailable configVolumes additionalContainers",
    injectionTemplate=STR,
    name=STR,
    type=STR,
    env=MapOf(SCALAR),
    labels=MapOf(STR),
    podAnnotations=MapOf(STR),
    serviceAnnotations=MapOf(STR),
)

GLOBAL = _obj(
    "arch certSigners defaultNodeSelector defaultPodDisruptionBudget defaultResources "
    "defaultTolerations logAsJson omitSidecarInjectorConfigMap operatorManageWebhooks "
    "priorityClassName proxy_init sts tracer variant waypoint mountMtlsCerts caName "
    "autoscalingv2API ipFamilies ipFamilyPolicy nativeNerdctl platform istiod resourceScope "
    "centralIstiod meshNetworks",
    hub=STR,
    tag=SCALAR,
    meshID=STR,
    network=STR,
    istioNamespace=STR,
    remotePilotAddress=STR,
    externalIstiod=BOOL,
    configCluster=BOOL,
    trustDomain=STR,
    caAddress=STR,
    jwtPolicy=STR,
    pilotCertProvider=STR,
    imagePullPolicy=STR,
    imagePullSecrets=ListOf(STR),
    multiCluster=_obj("globalDomainSuffix includeEnvoyFilter", clusterName=STR, enabled=BOOL),
    logging=_obj(level=STR),
    sds=_obj(token=_obj(aud=STR)),
    proxy=_obj(
        "autoInject enableCoreDump excludeIPRanges excludeInboundPorts excludeOutboundPorts "
        "includeIPRanges includeInboundPorts includeOutboundPorts holdApplicationUntilProxyStarts "
        "lifecycle privileged readinessFailureThreshold readinessInitialDelaySeconds "
        "readinessPeriodSeconds startupProbe tracer outlierLogPath",
        image=STR,
        clusterDomain=STR,
        logLevel=STR,
        componentLogLevel=STR,
        statusPort=INT,
        resources=RESOURCES,
    ),
)

PILOT_VALUES = _obj(
    "autoscaleMin autoscaleMax autoscaleBehavior cpu memory rollingMaxSurge rollingMaxUnavailable "
    "configMap nodeSelector podLabels seccompProfile topologySpreadConstraints extraContainerArgs "
    "volumeMounts volumes ipFamilies ipFamilyPolicy cni taint trustedZtunnelNamespace "
    "jwksResolverExtraRootCA autoscaleEnabled keepaliveMaxServerConnectionAge",
    enabled=BOOL,
    env=MapOf(SCALAR),
    hub=STR,
    tag=SCALAR,
    image=STR,
    replicaCount=INT,
    resources=RESOURCES,
    podAnnotations=MapOf(STR),
    deploymentLabels=MapOf(STR),
    serviceAnnotations=MapOf(STR),
    traceSampling=NUM,
)

VALUES = _obj(
    "cni ztunnel telemetry istio_cni revisionTags ownerName meshConfig defaultRevision "
    "experimental gatewayClasses",
    global_=GLOBAL,
    pilot=PILOT_VALUES,
    istiodRemote=_obj(
        "enabledLocalInjectorIstiod",
        enabled=BOOL,
        injectionPath=STR,
        injectionURL=STR,
        injectionCABundle=STR,
    ),
    gateways=_obj(
        "securityContext seccompProfile",
        **{"istio-ingressgateway": GATEWAY_VALUES, "istio-egressgateway": GATEWAY_VALUES},
    ),
    sidecarInjectorWebhook=_obj(
        "alwaysInjectSelector neverInjectSelector rewriteAppHTTPProbe templates defaultTemplates "
        "injectedAnnotations objectSelector reinvocationPolicy useLegacySelectors",
        enableNamespacesByDefault=BOOL,
    ),
    base=_obj(
        "excludedCRDs enableIstioConfigCRDs enableCRDTemplates validateGateway",
        validationURL=STR,
    ),
    profile=STR,
    revision=STR,
)

MESH_CONFIG = _obj(
    "accessLogFormat connectTimeout defaultDestinationRuleExportTo defaultHttpRetryPolicy "
    "defaultProviders defaultServiceExportTo defaultVirtualServiceExportTo discoverySelectors "
    "dnsRefreshRate enableAutoMtls enableEnvoyAccessLogService enableTracing extensionProviders "
    "h2UpgradePolicy inboundClusterStatName inboundTrafficPolicy ingressClass ingressControllerMode "
    "ingressSelector ingressService localityLbSetting meshMTLS outboundClusterStatName "
    "pathNormalization protocolDetectionTimeout tcpKeepalive certificates caCertificates ca "
    "configSources trustDomainAliases verifyCertificateAtClient serviceScopeConfigs",
    trustDomain=STR,
    rootNamespace=STR,
    accessLogFile=STR,
    accessLogEncoding=STR,
    enablePrometheusMerge=BOOL,
    outboundTrafficPolicy=_obj(mode=STR),
    defaultConfig=_obj(
        "tracing concurrency drainDuration terminationDrainDuration parentShutdownDuration "
        "proxyStatsMatcher holdApplicationUntilProxyStarts image privateKeyProvider "
        # proxyMetadata: the injector does not read the mesh-wide ProxyConfig (it applies the pod's
        # proxy.istio.io/config annotation), so the mesh-wide one is refused rather than ignored
        "gatewayTopology extraStatTags readinessProbe statusPort proxyMetadata",
        discoveryAddress=STR,
        meshId=STR,
    ),
    serviceSettings=ListOf(_obj(settings=_obj(clusterLocal=BOOL), hosts=ListOf(STR))),
)

SPEC = _obj(
    "installPackagePath",
    profile=STR,
    hub=STR,
    tag=SCALAR,
    revision=STR,
    namespace=STR,
    meshConfig=MESH_CONFIG,
    values=VALUES,
    components=_obj(
        "cni ztunnel istiodRemote",
        base=_obj(enabled=BOOL),
        pilot=COMPONENT,
        ingressGateways=ListOf(GATEWAY_COMPONENT),
        egressGateways=ListOf(GATEWAY_COMPONENT),
    ),
)

DOCUMENT = _obj(
    apiVersion=STR,
    kind=STR,
    metadata=_obj(name=STR, namespace=STR, labels=MapOf(STR), annotations=MapOf(STR)),
    spec=SPEC,
)


def field_schema(obj: Obj, key: str) -> Schema | None:
    # `global` is a Python keyword, so the schema spells it `global_`.
    return obj.fields.get(key + "_" if key == "global" else key)


def leaf_kind(path: list[str | int], root: Schema = SPEC) -> str | None:
    """The leaf kind at a spec-relative path (keys and list indexes), or None when it is not a leaf."""
    node: Schema | None = root
    for elem in path:
        if node is None:
            return None
        if isinstance(elem, int):
            node = node.item if isinstance(node, ListOf) else None
        elif isinstance(node, Obj):
            node = field_schema(node, elem)
        elif isinstance(node, MapOf):
            node = node.value
        else:
            return None
    return node.kind if isinstance(node, Leaf) else None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)


def _check_leaf(kind: str, value: Any) -> str | None:
    """None when `value` fits `kind`, else what was expected."""
    is_num = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number"
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "num": is_num,
        "scalar": isinstance(value, str | bool) or is_num,
        "int_or_str": isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)),
        "any": True,
    }[kind]
    if ok:
        return None
    return {
        "str": "a string",
        "bool": "a boolean (true or false)",
        "int": "an integer",
        "num": "a number",
        "scalar": "a string, number or boolean",
        "int_or_str": "an integer or a string",
    }[kind]


def validate(value: Any, schema: Schema, path: str) -> list[errors.Issue]:
    """Structural check of `value` against `schema`; every issue names its full path."""
    if isinstance(schema, Leaf):
        expected = _check_leaf(schema.kind, value)
        if expected is None:
            return []
        return [errors.Issue(path, f"expected {expected}, got {_type_name(value)} {value!r}")]
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            return [errors.Issue(path, f"expected a list, got {_type_name(value)}")]
        out: list[errors.Issue] = []
        for i, item in enumerate(value):
            out += validate(item, schema.item, f"{path}[{i}]")
        return out
    if not isinstance(value, dict):
        return [errors.Issue(path, f"expected a mapping, got {_type_name(value)}")]
    out = []
    for key, item in value.items():
        sub = f"{path}.{key}" if path else str(key)
        if not isinstance(key, str):
            out.append(errors.Issue(sub, "keys must be strings"))
            continue
        if isinstance(schema, MapOf):
            out += validate(item, schema.value, sub)
            continue
        child = field_schema(schema, key)
        if child is None:
            if key in schema.unsupported:
                out.append(errors.Issue(sub, "an Istio setting that meshplane does not support"))
            else:
                out.append(errors.Issue(sub, "unknown field"))
            continue
        if item is None:
            continue  # an explicit null means "unset", as in Istio's overlays
        out += validate(item, child, sub)
    return out
