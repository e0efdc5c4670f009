"""The Istio CRDs meshplane installs (Base component), with structural schemas.

Gateway and VirtualService, the kinds the control plane turns into config, are typed down to the
fields meshplane reads (servers, tls, sniHosts, routes...); deeper or rarely used parts preserve
unknown fields so valid Istio config is never pruned. `status` preserves unknown fields, as in
Istio's crd-all.gen.yaml. Versions v1, v1beta1 and v1alpha3 are served with one schema; v1alpha3 is
the storage version, as in Istio.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def s_str(enum: tuple[str, ...] = ()) -> Schema:
    return {"type": "string", **({"enum": list(enum)} if enum else {})}


def s_int() -> Schema:
    return {"type": "integer"}


def s_bool() -> Schema:
    return {"type": "boolean"}


def s_arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def s_map(values: Schema | None = None) -> Schema:
    return {"type": "object", "additionalProperties": values or s_str()}


def s_obj(**props: Schema) -> Schema:
    return {"type": "object", "properties": dict(props)}


def s_open(**props: Schema) -> Schema:
    """An object with some typed fields that also keeps fields it does not type."""
    return {**s_obj(**props), "x-kubernetes-preserve-unknown-fields": True}


STRS = s_arr(s_str())
_TLS_MODES = ("PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL")
_PORT_SELECTOR = s_obj(number=s_int())
_DESTINATION = s_obj(host=s_str(), subset=s_str(), port=_PORT_SELECTOR)
_ROUTE_DEST = s_obj(destination=_DESTINATION, weight=s_int())

GATEWAY_SPEC = s_obj(
    selector=s_map(),
    servers=s_arr(
        s_obj(
            port=s_obj(number=s_int(), protocol=s_str(), name=s_str(), targetPort=s_int()),
            bind=s_str(),
            hosts=STRS,
            tls=s_open(
                httpsRedirect=s_bool(),
                mode=s_str(_TLS_MODES),
                serverCertificate=s_str(),
                privateKey=s_str(),
                caCertificates=s_str(),
                credentialName=s_str(),
                subjectAltNames=STRS,
                minProtocolVersion=s_str(),
                maxProtocolVersion=s_str(),
                cipherSuites=STRS,
            ),
            defaultEndpoint=s_str(),
            name=s_str(),
        )
    ),
)

_L4_MATCH = s_obj(
    destinationSubnets=STRS,
    port=s_int(),
    sourceLabels=s_map(),
    gateways=STRS,
    sourceNamespace=s_str(),
    sourceSubnet=s_str(),
)

VIRTUAL_SERVICE_SPEC = s_obj(
    hosts=STRS,
    gateways=STRS,
    exportTo=STRS,
    http=s_arr(s_open(name=s_str(), route=s_arr(s_open(destination=_DESTINATION, weight=s_int())))),
    tls=s_arr(
        s_obj(
            match=s_arr(
                s_obj(
                    sniHosts=STRS,
                    destinationSubnets=STRS,
                    port=s_int(),
                    sourceLabels=s_map(),
                    gateways=STRS,
                    sourceNamespace=s_str(),
                )
            ),
            route=s_arr(_ROUTE_DEST),
        )
    ),
    tcp=s_arr(s_obj(match=s_arr(_L4_MATCH), route=s_arr(_ROUTE_DEST))),
)

DESTINATION_RULE_SPEC = s_obj(
    host=s_str(),
    trafficPolicy=s_open(),
    subsets=s_arr(s_open(name=s_str(), labels=s_map(), trafficPolicy=s_open())),
    exportTo=STRS,
    workloadSelector=s_obj(matchLabels=s_map()),
)

SERVICE_ENTRY_SPEC = s_obj(
    hosts=STRS,
    addresses=STRS,
    ports=s_arr(s_obj(number=s_int(), protocol=s_str(), name=s_str(), targetPort=s_int())),
    location=s_str(("MESH_EXTERNAL", "MESH_INTERNAL")),
    resolution=s_str(("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN")),
    endpoints=s_arr(s_open(address=s_str(), ports=s_map(s_int()), labels=s_map(), network=s_str())),
    workloadSelector=s_obj(labels=s_map()),
    exportTo=STRS,
    subjectAltNames=STRS,
)

WORKLOAD_ENTRY_SPEC = s_obj(
    address=s_str(),
    ports=s_map(s_int()),
    labels=s_map(),
    network=s_str(),
    locality=s_str(),
    weight=s_int(),
    serviceAccount=s_str(),
)

SIDECAR_SPEC = s_open(workloadSelector=s_obj(labels=s_map()), egress=s_arr(s_open()), ingress=s_arr(s_open()))

PEER_AUTHENTICATION_SPEC = s_obj(
    selector=s_obj(matchLabels=s_map()),
    mtls=s_obj(mode=s_str(("UNSET", "DISABLE", "PERMISSIVE", "STRICT"))),
    portLevelMtls=s_map(s_obj(mode=s_str(("UNSET", "DISABLE", "PERMISSIVE", "STRICT")))),
)

# rules keep every field, so the control plane (and its validating webhook) sees what it does not
# implement and refuses it by name instead of the API server pruning it away
AUTHORIZATION_POLICY_SPEC = s_open(
    selector=s_obj(matchLabels=s_map()),
    action=s_str(("ALLOW", "DENY", "AUDIT", "CUSTOM")),
    provider=s_open(name=s_str()),
    rules=s_arr(s_open()),
)
REQUEST_AUTHENTICATION_SPEC = s_open(selector=s_obj(matchLabels=s_map()), jwtRules=s_arr(s_open()))

# (group, kind, plural, shortNames, printer columns, spec schema)
KINDS: tuple[tuple[str, str, str, tuple[str, ...], tuple[tuple[str, str, str], ...], Schema], ...] = (
    ("networking.istio.io", "Gateway", "gateways", ("gw",), (), GATEWAY_SPEC),
    (
        "networking.istio.io",
        "VirtualService",
        "virtualservices",
        ("vs",),
        (("Gateways", "string", ".spec.gateways"), ("Hosts", "string", ".spec.hosts")),
        VIRTUAL_SERVICE_SPEC,
    ),
    (
        "networking.istio.io",
        "DestinationRule",
        "destinationrules",
        ("dr",),
        (("Host", "string", ".spec.host"),),
        DESTINATION_RULE_SPEC,
    ),
    (
        "networking.istio.io",
        "ServiceEntry",
        "serviceentries",
        ("se",),
        (("Hosts", "string", ".spec.hosts"), ("Location", "string", ".spec.location")),
        SERVICE_ENTRY_SPEC,
    ),
    (
        "networking.istio.io",
        "WorkloadEntry",
        "workloadentries",
        ("we",),
        (("Address", "string", ".spec.address"),),
        WORKLOAD_ENTRY_SPEC,
    ),
    ("networking.istio.io", "Sidecar", "sidecars", (), (), SIDECAR_SPEC),
    (
        "security.istio.io",
        "PeerAuthentication",
        "peerauthentications",
        ("pa",),
        (("Mode", "string", ".spec.mtls.mode"),),
        PEER_AUTHENTICATION_SPEC,
    ),
    (
        "security.istio.io",
        "AuthorizationPolicy",
        "authorizationpolicies",
        ("ap",),
        (("Action", "string", ".spec.action"),),
        AUTHORIZATION_POLICY_SPEC,
    ),
    (
        "security.istio.io",
        "RequestAuthentication",
        "requestauthentications",
        ("ra",),
        (),
        REQUEST_AUTHENTICATION_SPEC,
    ),
)

VERSIONS = (("v1", False), ("v1alpha3", True), ("v1beta1", False))
SECURITY_VERSIONS = (("v1", False), ("v1beta1", True))


def _version(name: str, storage: bool, columns: tuple[tuple[str, str, str], ...], spec: Schema) -> Schema:
    cols = [{"name": n, "type": t, "jsonPath": p} for n, t, p in columns]
    cols.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return {
        "name": name,
        "served": True,
        "storage": storage,
        "additionalPrinterColumns": cols,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": spec,
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }
        },
        "subresources": {"status": {}},
    }


def crd(
    group: str,
    kind: str,
    plural: str,
    short: tuple[str, ...],
    columns: tuple[tuple[str, str, str], ...],
    spec: Schema,
) -> dict[str, Any]:
    versions = SECURITY_VERSIONS if group == "security.istio.io" else VERSIONS
    category = group.replace(".", "-")
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "categories": ["istio-io", category],
    }
    if short:
        names["shortNames"] = list(short)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "annotations": {"helm.sh/resource-policy": "keep"},
            "labels": {"app": "istio-pilot", "chart": "istio", "heritage": "Tiller", "release": "istio"},
        },
        "spec": {
            "group": group,
            "names": names,
            "scope": "Namespaced",
            "versions": [_version(n, s, columns, spec) for n, s in versions],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd(*k) for k in KINDS]
