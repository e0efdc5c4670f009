"""Rendering: labels on every object, ports, webhook entries and paths, remote Service forms, order."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import yaml
from lightkube import codecs

from meshplane.installer import config, crds, eastwest, gateways, labels, manifest, render
from meshplane.model import injection
from tests.support.installenv import CLUSTER1_YAML as CLUSTER1
from tests.support.installenv import CLUSTER2_YAML as CLUSTER2

INSTALL_LABELS = (
    labels.COMPONENT,
    labels.MANAGED,
    labels.VERSION,
    labels.OWNER,
    labels.OWNER_NAMESPACE,
    labels.REV,
)


def _render(
    text: str, sets: tuple[str, ...] = (), mesh: gateways.MeshDefaults | None = None
) -> list[dict[str, Any]]:
    return render.render(config.load([("in.yaml", text)], sets), mesh)


def _find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {[manifest.describe(o) for o in objs]}"
    return found[0]


@pytest.fixture
def primary() -> list[dict[str, Any]]:
    return _render(CLUSTER1, ("values.pilot.env.EXTERNAL_ISTIOD=true",))


@pytest.fixture
def remote() -> list[dict[str, Any]]:
    return _render(CLUSTER2.format(addr="127.0.3.1"))


@pytest.fixture
def eastwest_objs() -> list[dict[str, Any]]:
    return _render(
        eastwest.generate("network1"), mesh=gateways.MeshDefaults(cluster_id="cluster1", mesh_id="mesh1")
    )


def test_every_object_but_namespaces_carries_install_labels(
    primary: list[dict[str, Any]], remote: list[dict[str, Any]], eastwest_objs: list[dict[str, Any]]
) -> None:
    for objs, owner in ((primary, "unknown"), (remote, "unknown"), (eastwest_objs, "eastwest")):
        for obj in objs:
            lbl = obj["metadata"].get("labels") or {}
            if obj["kind"] == "Namespace":
                assert labels.COMPONENT not in lbl
                continue
            assert all(k in lbl for k in INSTALL_LABELS), manifest.describe(obj)
            assert lbl[labels.COMPONENT] in labels.COMPONENTS
            assert lbl[labels.OWNER] == owner and lbl[labels.OWNER_NAMESPACE] == "istio-system"
            assert lbl[labels.REV] == "default" and lbl[labels.MANAGED] == "Reconcile"


def test_order_is_crds_then_namespaces_then_the_rest(primary: list[dict[str, Any]]) -> None:
    kinds = [o["kind"] for o in primary]
    n_crd = kinds.count("CustomResourceDefinition")
    assert n_crd >= 2 and kinds[:n_crd] == ["CustomResourceDefinition"] * n_crd
    assert kinds[n_crd] == "Namespace"
    assert "Namespace" not in kinds[n_crd + 1 :]
    assert kinds.index("Deployment") > kinds.index("ConfigMap") > kinds.index("ServiceAccount")


def test_primary_objects(primary: list[dict[str, Any]]) -> None:
    ns = _find(primary, "Namespace", "istio-system")
    assert ns["metadata"]["labels"] == {"topology.istio.io/network": "network1"}
    for name in ("gateways.networking.istio.io", "virtualservices.networking.istio.io"):
        assert (
            _find(primary, "CustomResourceDefinition", name)["metadata"]["labels"][labels.COMPONENT] == "Base"
        )
    svc = _find(primary, "Service", "istiod")
    ports = {(p["name"], p["port"], p.get("targetPort", p["port"])) for p in svc["spec"]["ports"]}
    assert ports == {
        ("grpc-xds", 15010, 15010),
        ("https-dns", 15012, 15012),
        ("https-webhook", 443, 15017),
        ("http-monitoring", 15014, 15014),
    }
    dep = _find(primary, "Deployment", "istiod")
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "docker.io/meshplane/pilot:0.1.0"
    assert container["args"][0] == "discovery"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["CLUSTER_ID"] == "cluster1" and env["EXTERNAL_ISTIOD"] == "true"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
    assert {p["containerPort"] for p in container["ports"]} == {8080, 15010, 15012, 15014, 15017}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 15014}
    assert (env["NETWORK"], env["MESH_ID"], env["TRUST_DOMAIN"]) == ("network1", "mesh1", "cluster.local")
    assert container["args"] == ["discovery", "--disable-plaintext-xds"]
    assert pod["spec"]["serviceAccountName"] == "istiod"
    assert _find(primary, "ServiceAccount", "istiod")
    mesh = yaml.safe_load(_find(primary, "ConfigMap", "istio")["data"]["mesh"])
    assert mesh["defaultConfig"]["discoveryAddress"] == "istiod.istio-system.svc:15012"
    assert mesh["trustDomain"] == "cluster.local"
    values = json.loads(_find(primary, "ConfigMap", "istio-sidecar-injector")["data"]["values"])
    assert values["global"]["multiCluster"]["clusterName"] == "cluster1"
    assert values["global"]["proxy"]["image"] == "docker.io/meshplane/proxyv2:0.1.0"
    cr = _find(primary, "ClusterRole", "istiod-clusterrole-istio-system")
    granted = {
        (g, r, v)
        for rule in cr["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    for need in (
        ("", "services", "watch"),
        ("discovery.k8s.io", "endpointslices", "watch"),
        ("", "pods", "list"),
        ("", "nodes", "watch"),
        ("", "namespaces", "watch"),
        ("authentication.k8s.io", "tokenreviews", "create"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "update"),
        ("networking.istio.io", "virtualservices", "watch"),
        ("", "configmaps", "update"),
    ):
        assert need in granted, need
    role = _find(primary, "Role", "istiod")
    rgranted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert ("", "configmaps", "get") in rgranted and ("", "secrets", "watch") in rgranted


def _webhooks(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mwc = _find(objs, "MutatingWebhookConfiguration", "istio-sidecar-injector")
    assert mwc["metadata"]["labels"]["app"] == "sidecar-injector"
    assert mwc["metadata"]["labels"][labels.COMPONENT] == "Pilot"
    hooks: list[dict[str, Any]] = mwc["webhooks"]
    return hooks


def test_injection_webhook_entries_and_selectors(primary: list[dict[str, Any]]) -> None:
    hooks = _webhooks(primary)
    assert [h["name"] for h in hooks] == [
        "rev.namespace.sidecar-injector.istio.io",
        "rev.object.sidecar-injector.istio.io",
        "namespace.sidecar-injector.istio.io",
        "object.sidecar-injector.istio.io",
    ]
    for h in hooks:
        assert h["clientConfig"] == {
            "service": {"name": "istiod", "namespace": "istio-system", "path": "/inject", "port": 443}
        }
        assert h["rules"] == [
            {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
        ]
        assert (h["failurePolicy"], h["sideEffects"], h["admissionReviewVersions"]) == (
            "Fail",
            "None",
            ["v1"],
        )
    by = {h["name"].split("sidecar")[0]: h for h in hooks}
    assert by["namespace."]["namespaceSelector"] == {
        "matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]
    }
    assert by["rev.namespace."]["namespaceSelector"]["matchExpressions"] == [
        {"key": "istio.io/rev", "operator": "In", "values": ["default"]},
        {"key": "istio-injection", "operator": "DoesNotExist"},
    ]
    assert by["object."]["objectSelector"]["matchExpressions"] == [
        {"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]},
        {"key": "istio.io/rev", "operator": "DoesNotExist"},
    ]
    assert by["rev.object."]["objectSelector"]["matchExpressions"][1] == {
        "key": "istio.io/rev",
        "operator": "In",
        "values": ["default"],
    }


def test_selectors_match_as_istio_documents() -> None:
    assert injection.selected({"istio-injection": "enabled"}, {})
    assert not injection.selected({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"})
    assert not injection.selected({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"})
    assert injection.selected({}, {"sidecar.istio.io/inject": "true"})
    assert injection.selected({"istio.io/rev": "default"}, {})
    assert injection.selected({}, {"istio.io/rev": "default"})
    assert not injection.selected({}, {})
    assert not injection.selected({"istio.io/rev": "canary"}, {})
    assert injection.selected({"istio.io/rev": "canary"}, {}, revision="canary")


def test_remote_profile_objects(remote: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in remote}
    assert "Deployment" not in kinds
    assert not [o for o in remote if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "istiod"]
    assert not [o for o in remote if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "istio"]
    for h in _webhooks(remote):
        assert h["clientConfig"]["service"]["path"] == "/inject/cluster/cluster2/net/network1"
        assert h["clientConfig"]["service"]["port"] == 443
        assert "caBundle" not in h["clientConfig"]
    svc = _find(remote, "Service", "istiod")
    assert "selector" not in svc["spec"] and "type" not in svc["spec"]
    assert [(p["name"], p["port"], p.get("targetPort")) for p in svc["spec"]["ports"]] == [
        ("tcp-istiod", 15012, None),
        ("tcp-webhook", 443, 15017),
    ]
    eps = _find(remote, "EndpointSlice", "istiod")
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "istiod"
    assert eps["addressType"] == "IPv4" and eps["endpoints"] == [{"addresses": ["127.0.3.1"]}]
    assert {(p["name"], p["port"]) for p in eps["ports"]} == {("tcp-istiod", 15012), ("tcp-webhook", 15017)}
    reader = _find(remote, "ClusterRole", "istio-reader-clusterrole-istio-system")
    granted = {
        (g, r, v)
        for rule in reader["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert ("", "configmaps", "create") in granted
    assert ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "update") in granted
    assert ("authentication.k8s.io", "tokenreviews", "create") in granted
    binding = _find(remote, "ClusterRoleBinding", "istio-reader-clusterrole-istio-system")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "istio-reader-service-account", "namespace": "istio-system"}
    ]
    assert (
        _find(remote, "ServiceAccount", "istio-reader-service-account")["metadata"]["labels"][
            labels.COMPONENT
        ]
        == "Base"
    )
    assert _find(remote, "ConfigMap", "values")
    assert _find(remote, "ValidatingWebhookConfiguration", "istiod-default-validator")


def test_remote_with_host_name_uses_external_name() -> None:
    objs = _render(CLUSTER2.format(addr="abc.elb.example.com"))
    svc = _find(objs, "Service", "istiod")
    assert svc["spec"]["type"] == "ExternalName" and svc["spec"]["externalName"] == "abc.elb.example.com"
    assert not [o for o in objs if o["kind"] == "EndpointSlice"]


def test_remote_ipv6_address() -> None:
    eps = _find(_render(CLUSTER2.format(addr="'fd00::1'")), "EndpointSlice", "istiod")
    assert eps["addressType"] == "IPv6"


def test_eastwest_gateway(eastwest_objs: list[dict[str, Any]]) -> None:
    assert {o["kind"] for o in eastwest_objs} == {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
    }
    svc = _find(eastwest_objs, "Service", "istio-eastwestgateway")
    assert svc["spec"]["type"] == "LoadBalancer"
    want = {
        "istio": "eastwestgateway",
        "app": "istio-eastwestgateway",
        "topology.istio.io/network": "network1",
    }
    assert want.items() <= svc["metadata"]["labels"].items()
    assert svc["metadata"]["labels"][labels.COMPONENT] == "IngressGateways"
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [
        ("status-port", 15021),
        ("tls", 15443),
        ("tls-istiod", 15012),
        ("tls-webhook", 15017),
    ]
    dep = _find(eastwest_objs, "Deployment", "istio-eastwestgateway")
    pod = dep["spec"]["template"]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (c,) = pod["spec"]["containers"]
    assert c["image"] == "docker.io/meshplane/proxyv2:0.1.0"
    assert c["args"][:2] == ["proxy", "router"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["ISTIO_META_REQUESTED_NETWORK_VIEW"] == "network1"
    assert env["ISTIO_META_NETWORK"] == "network1"
    assert env["ISTIO_META_CLUSTER_ID"] == "cluster1" and env["ISTIO_META_MESH_ID"] == "mesh1"
    assert json.loads(env["PROXY_CONFIG"]) == {"discoveryAddress": "istiod.istio-system.svc:15012"}
    assert c["readinessProbe"]["httpGet"]["port"] == 15021
    assert pod["spec"]["serviceAccountName"] == "istio-eastwestgateway-service-account"


def test_eastwest_without_mesh_defaults_falls_back_to_istio_defaults() -> None:
    dep = _find(_render(eastwest.generate("network1")), "Deployment", "istio-eastwestgateway")
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ISTIO_META_CLUSTER_ID"] == "Kubernetes" and env["ISTIO_META_MESH_ID"] == "cluster.local"


def test_mesh_defaults_from_injector_values() -> None:
    values = json.dumps({"global": {"multiCluster": {"clusterName": "c1"}, "meshID": "m", "network": "n"}})
    assert gateways.MeshDefaults.from_injector_values(values) == gateways.MeshDefaults("c1", "m", "n", "")
    assert gateways.MeshDefaults.from_injector_values("{not json") == gateways.MeshDefaults()
    assert (
        gateways.MeshDefaults.from_injector_values('{"global": {"multiCluster": 3}}')
        == gateways.MeshDefaults()
    )


def _walk_schema(node: dict[str, Any], path: str) -> None:
    """Structural schema rules: every node typed (or preserving unknown fields); objects list properties."""
    assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
    for key, child in (node.get("properties") or {}).items():
        _walk_schema(child, f"{path}.{key}")
    if "items" in node:
        _walk_schema(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        _walk_schema(node["additionalProperties"], f"{path}{{}}")


def test_crds_are_structural() -> None:
    for crd in crds.all_crds():
        versions = crd["spec"]["versions"]
        assert sum(v["storage"] for v in versions) == 1
        for v in versions:
            schema = v["schema"]["openAPIV3Schema"]
            _walk_schema(schema, crd["metadata"]["name"])
            assert schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True


def test_builtin_objects_validate_against_kubernetes_schemas(
    primary: list[dict[str, Any]], remote: list[dict[str, Any]], eastwest_objs: list[dict[str, Any]]
) -> None:
    for obj in primary + remote + eastwest_objs:
        kubernetes_validate.validate(obj, "1.32", strict=True)


def test_objects_survive_lightkube_models(
    primary: list[dict[str, Any]], remote: list[dict[str, Any]], eastwest_objs: list[dict[str, Any]]
) -> None:
    """The applier sends objects through lightkube's models; nothing may be dropped on the way."""
    for obj in primary + remote + eastwest_objs:
        assert codecs.from_dict(obj).to_dict() == obj, manifest.describe(obj)


def test_yaml_stream_round_trips(primary: list[dict[str, Any]]) -> None:
    text = manifest.to_yaml(primary)
    assert list(yaml.safe_load_all(text)) == primary
    assert text.startswith("---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n")


def test_revision_suffixes_names() -> None:
    objs = _render(CLUSTER1, ("revision=canary",))
    assert _find(objs, "Deployment", "istiod-canary")
    hooks = _find(objs, "MutatingWebhookConfiguration", "istio-sidecar-injector-canary")["webhooks"]
    assert [h["name"] for h in hooks] == [
        "rev.namespace.sidecar-injector.istio.io",
        "rev.object.sidecar-injector.istio.io",
    ]
    assert hooks[0]["clientConfig"]["service"]["name"] == "istiod-canary"
    assert all(o["metadata"]["labels"].get(labels.REV) == "canary" for o in objs if o["kind"] != "Namespace")


def test_image_roles() -> None:
    from tests.support import images

    assert images.role("docker.io/meshplane/pilot:0.1.0") == "pilot"
    assert images.role("docker.io/istio/proxyv2:1.24.0@sha256:abc") == "proxyv2"
    assert images.role("localhost:5000/meshplane/proxyv2") == "proxyv2"
    assert images.role("registry.istio.io/release/examples-helloworld-v1:1.0") is None
    assert images.default(images.PROXY) == "docker.io/meshplane/proxyv2:0.1.0"


def test_knobs_reach_the_objects() -> None:
    objs = _render(CLUSTER1, ("values.pilot.traceSampling=1.5", "values.global.proxy.logLevel=debug"))
    env = {
        e["name"]: e.get("value")
        for e in _find(objs, "Deployment", "istiod")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PILOT_TRACE_SAMPLING"] == "1.5"
    values = json.loads(_find(objs, "ConfigMap", "istio-sidecar-injector")["data"]["values"])
    assert values["global"]["proxy"]["logLevel"] == "debug"
    remote_cc = _render(CLUSTER2.format(addr="10.0.0.1"), ("values.global.configCluster=true",))
    assert _find(remote_cc, "ServiceAccount", "istiod") and _find(
        remote_cc, "ClusterRole", "istiod-clusterrole-istio-system"
    )
    assert not [
        o
        for o in _render(CLUSTER2.format(addr="10.0.0.1"))
        if o["metadata"]["name"] == "istiod-clusterrole-istio-system"
    ]
    assert "Deployment" not in {o["kind"] for o in _render(CLUSTER1, ("values.pilot.enabled=false",))}
    ew = _render(eastwest.generate("network1"), ("values.global.proxy.logLevel=debug",))
    args = _find(ew, "Deployment", "istio-eastwestgateway")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert "--proxyLogLevel=debug" in args
