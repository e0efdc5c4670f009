"""Injection: apply the returned JSONPatch to the pod and check what the pod became."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate
import pytest

from meshplane.devcluster.api import patch as jsonpatch_apply
from meshplane.installer import config, gateways, pilot
from meshplane.webhooks import errors, inject, jsonpatch, policy, settings, sidecar


def _apply(pod: dict[str, Any], s: settings.InjectionSettings, path: str = "/inject") -> dict[str, Any]:
    result = inject.inject(pod, "sample", s, path)
    assert result.patch is not None, result.reason
    out: dict[str, Any] = jsonpatch_apply.json_patch(copy.deepcopy(pod), result.patch)
    assert out == result.pod
    return out


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    (proxy,) = [c for c in pod["spec"]["containers"] if c["name"] == "istio-proxy"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in proxy["env"]}


def test_injected_pod(pod: dict[str, Any], inj_settings: settings.InjectionSettings) -> None:
    out = _apply(pod, inj_settings)
    assert [c["name"] for c in out["spec"]["containers"]] == ["helloworld", "istio-proxy"]
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["istio-init"]
    proxy = out["spec"]["containers"][1]
    assert proxy["image"] == "docker.io/meshplane/proxyv2:0.1.0"
    assert proxy["args"][:2] == ["proxy", "sidecar"]
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/healthz/ready", "port": 15021}
    env = _env(out)
    assert env["CA_ADDR"] == "istiod.istio-system.svc:15012"
    assert env["PILOT_CERT_PROVIDER"] == "istiod"
    assert json.loads(env["PROXY_CONFIG"])["discoveryAddress"] == "istiod.istio-system.svc:15012"
    assert env["ISTIO_META_CLUSTER_ID"] == "cluster1" and env["ISTIO_META_NETWORK"] == "network1"
    assert env["ISTIO_META_MESH_ID"] == "mesh1" and env["TRUST_DOMAIN"] == "cluster.local"
    assert env["ISTIO_META_WORKLOAD_NAME"] == "helloworld-v2"
    assert env["ISTIO_META_OWNER"] == "kubernetes://apis/apps/v1/namespaces/sample/deployments/helloworld-v2"
    assert env["ISTIO_META_APP_CONTAINERS"] == "helloworld"
    assert json.loads(env["ISTIO_META_POD_PORTS"]) == [{"containerPort": 5000, "protocol": "TCP"}]
    for name, path in (
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
        ("INSTANCE_IP", "status.podIP"),
        ("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        ("HOST_IP", "status.hostIP"),
    ):
        assert env[name] == {"fieldRef": {"fieldPath": path}}
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    token = vols["istio-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"path": "istio-token", "expirationSeconds": 43200, "audience": "istio-ca"}
    assert vols["istiod-ca-cert"] == {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}
    assert vols["istio-envoy"]["emptyDir"] == {"medium": "Memory"}
    mounts = {m["name"]: m["mountPath"] for m in proxy["volumeMounts"]}
    assert (
        mounts["istio-token"] == "/var/run/secrets/tokens"
        and mounts["istiod-ca-cert"] == "/var/run/secrets/istio"
    )
    init = out["spec"]["initContainers"][0]
    assert init["args"][0] == "istio-iptables"
    args = init["args"]
    assert args[args.index("-p") + 1] == "15001" and args[args.index("-z") + 1] == "15006"
    assert args[args.index("-d") + 1] == "15090,15021,15020"
    assert "NET_ADMIN" in init["securityContext"]["capabilities"]["add"]
    labels = out["metadata"]["labels"]
    assert labels["security.istio.io/tlsMode"] == "istio"
    assert labels["service.istio.io/canonical-name"] == "helloworld"
    assert labels["service.istio.io/canonical-revision"] == "v2"
    assert labels["topology.istio.io/network"] == "network1"
    ann = out["metadata"]["annotations"]
    assert ann["istio.io/rev"] == "default"
    assert ann["kubectl.kubernetes.io/default-container"] == "helloworld"
    assert json.loads(ann["sidecar.istio.io/status"]) == {
        "initContainers": ["istio-init"],
        "containers": ["istio-proxy"],
        "volumes": [
            "workload-socket",
            "credential-socket",
            "workload-certs",
            "istio-envoy",
            "istio-data",
            "istio-podinfo",
            "istio-token",
            "istiod-ca-cert",
        ],
        "imagePullSecrets": None,
        "revision": "default",
    }
    kubernetes_validate.validate({**out, "metadata": {**out["metadata"], "name": "x"}}, "1.32", strict=True)


def test_url_path_overrides_values_and_goes_last(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings
) -> None:
    out = _apply(pod, inj_settings, "/inject/cluster/cluster2/net/network9/extra/v")
    env = [e["name"] for e in out["spec"]["containers"][1]["env"]]
    assert env[-3:] == ["EXTRA", "ISTIO_META_CLUSTER_ID", "ISTIO_META_NETWORK"]
    assert env.count("ISTIO_META_CLUSTER_ID") == 1 and env.count("ISTIO_META_NETWORK") == 1
    got = _env(out)
    assert (got["ISTIO_META_CLUSTER_ID"], got["ISTIO_META_NETWORK"], got["EXTRA"]) == (
        "cluster2",
        "network9",
        "v",
    )
    assert out["metadata"]["labels"]["topology.istio.io/network"] == "network9"


def test_pod_network_label_wins_for_network(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings
) -> None:
    pod["metadata"]["labels"]["topology.istio.io/network"] = "podnet"
    out = _apply(pod, inj_settings, "/inject/cluster/cluster2/net/network9")
    got = _env(out)
    assert got["ISTIO_META_NETWORK"] == "podnet" and got["ISTIO_META_CLUSTER_ID"] == "cluster2"


def test_without_cluster_name_istio_defaults(pod: dict[str, Any]) -> None:
    s = settings.InjectionSettings(proxy_image="hub/proxyv2:1")
    got = _env(_apply(pod, s))
    assert got["ISTIO_META_CLUSTER_ID"] == "Kubernetes" and "ISTIO_META_NETWORK" not in got
    assert got["ISTIO_META_MESH_ID"] == "cluster.local"
    assert "topology.istio.io/network" not in _apply(pod, s)["metadata"]["labels"]


@pytest.mark.parametrize(("annotation", "init", "meta"), [(None, ["istio-init"], "REDIRECT"),
                                                          ("REDIRECT", ["istio-init"], "REDIRECT"),
                                                          ("NONE", [], "NONE")])  # fmt: skip
def test_interception_mode_annotation(
    pod: dict[str, Any],
    inj_settings: settings.InjectionSettings,
    annotation: str | None,
    init: list[str],
    meta: str,
) -> None:
    if annotation is not None:
        pod["metadata"].setdefault("annotations", {})[sidecar.INTERCEPTION_ANNOTATION] = annotation
    out = _apply(pod, inj_settings)
    assert [c["name"] for c in out["spec"].get("initContainers") or []] == init
    assert _env(out)["ISTIO_META_INTERCEPTION_MODE"] == meta


@pytest.mark.parametrize(("value", "says"), [("TPROXY", "is not implemented"), ("redirect", "is not a mode")])
def test_interception_mode_refused(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings, value: str, says: str
) -> None:
    pod["metadata"].setdefault("annotations", {})[sidecar.INTERCEPTION_ANNOTATION] = value
    with pytest.raises(errors.WebhookError, match=f"sidecar.istio.io/interceptionMode: '{value}' {says}"):
        inject.inject(pod, "sample", inj_settings, "/inject")


def test_injecting_twice_is_a_no_op(pod: dict[str, Any], inj_settings: settings.InjectionSettings) -> None:
    once = _apply(pod, inj_settings)
    again = inject.inject(once, "sample", inj_settings, "/inject")
    assert again.patch is None and "already injected" in again.reason


@pytest.mark.parametrize(
    ("mutate", "namespace", "inject_expected"),
    [
        (lambda p: None, "sample", True),
        (
            lambda p: (
                p["metadata"].setdefault("annotations", {}).update({"sidecar.istio.io/inject": "false"})
            ),
            "sample",
            False,
        ),
        (lambda p: p["metadata"]["labels"].update({"sidecar.istio.io/inject": "false"}), "sample", False),
        (
            lambda p: (
                p["metadata"]["labels"].update({"sidecar.istio.io/inject": "true"}),
                p["metadata"].setdefault("annotations", {}).update({"sidecar.istio.io/inject": "false"}),
            ),
            "sample",
            True,
        ),
        (lambda p: p["metadata"]["labels"].update({"sidecar.istio.io/inject": "yes"}), "sample", True),
        (lambda p: p["spec"].update({"hostNetwork": True}), "sample", False),
        (lambda p: p["metadata"].pop("namespace"), "kube-system", False),
    ],
)
def test_policy(mutate: Any, namespace: str, inject_expected: bool, pod: dict[str, Any]) -> None:
    mutate(pod)
    assert policy.decide(pod, pod["metadata"].get("namespace") or namespace).inject is inject_expected


def test_user_defined_proxy_container_is_merged(
    pod: dict[str, Any], inj_settings: settings.InjectionSettings
) -> None:
    pod["spec"]["containers"].insert(
        0, {"name": "istio-proxy", "image": "auto", "resources": {"limits": {"cpu": "1"}}}
    )
    out = _apply(pod, inj_settings)
    names = [c["name"] for c in out["spec"]["containers"]]
    assert names == ["helloworld", "istio-proxy"]
    proxy = out["spec"]["containers"][1]
    assert proxy["image"] == inj_settings.proxy_image and proxy["resources"] == {"limits": {"cpu": "1"}}
    assert proxy["args"][:2] == ["proxy", "sidecar"]


def test_deploy_meta() -> None:
    pod = {"metadata": {"name": "solo"}}
    assert sidecar.deploy_meta(pod, "ns") == sidecar.DeployMeta("solo", "ns")
    job = {
        "metadata": {
            "generateName": "j-",
            "labels": {"controller-uid": "x"},
            "ownerReferences": [
                {"kind": "Job", "apiVersion": "batch/v1", "name": "nightly-28000000", "controller": True}
            ],
        }
    }
    assert sidecar.deploy_meta(job, "ns") == sidecar.DeployMeta("nightly", "ns", "CronJob", "batch/v1")


def test_settings_from_the_installer_values() -> None:
    """The injector reads exactly what the installer renders into istio-sidecar-injector."""
    cfg = config.load(
        [
            (
                "c1.yaml",
                "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  values:\n"
                "    global:\n      meshID: mesh1\n      multiCluster:\n        clusterName: cluster1\n"
                "      network: network1\n",
            )
        ]
    )
    values = json.loads(pilot.injector_configmap(cfg)["data"]["values"])
    s = settings.InjectionSettings.from_values(values)
    assert s.proxy_image == cfg.proxy_image
    assert (s.cluster_name, s.network, s.mesh_id, s.trust_domain) == (
        "cluster1",
        "network1",
        "mesh1",
        "cluster.local",
    )
    assert s.istiod_address == "istiod.istio-system.svc:15012"
    # and the east-west gateway reads the same document for its defaults
    mesh = gateways.MeshDefaults.from_injector_values(pilot.injector_configmap(cfg)["data"]["values"])
    assert (mesh.cluster_id, mesh.mesh_id, mesh.network) == ("cluster1", "mesh1", "network1")


def test_settings_errors(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(settings.errors.WebhookError, match="global"):
        settings.InjectionSettings.from_values({})
    with pytest.raises(settings.errors.WebhookError, match="hub"):
        settings.InjectionSettings.from_values({"global": {}})
    with pytest.raises(settings.errors.WebhookError, match="must be a string"):
        settings.InjectionSettings.from_values({"global": {"hub": "h", "tag": "t", "network": ["x"]}})
    monkeypatch.setenv("MESHPLANE_POD_ROOT", str(tmp_path))
    with pytest.raises(settings.errors.WebhookError, match="cannot read"):
        settings.load_values_file()
    f = tmp_path / "var/lib/istio/inject/values"
    f.parent.mkdir(parents=True)
    f.write_text("{")
    with pytest.raises(settings.errors.WebhookError, match="not JSON"):
        settings.load_values_file()
    f.write_text(json.dumps({"global": {"hub": "h", "tag": "t"}}))
    assert settings.load_values_file().proxy_image == "h/proxyv2:t"


def test_json_patch_escapes_pointer_tokens() -> None:
    ops = jsonpatch.diff({"a": {"x/y": 1, "m~n": 2}}, {"a": {"x/y": 3}})
    assert {"op": "remove", "path": "/a/m~0n"} in ops
    assert {"op": "replace", "path": "/a/x~1y", "value": 3} in ops
    assert jsonpatch_apply.json_patch({"a": {"x/y": 1, "m~n": 2}}, ops) == {"a": {"x/y": 3}}
    assert jsonpatch.diff([1, 2], [1, 2, 3]) == [{"op": "add", "path": "/2", "value": 3}]
    assert jsonpatch.diff([1, 2], [2]) == [{"op": "replace", "path": "", "value": [2]}]
    assert jsonpatch.diff(1, True) == [{"op": "replace", "path": "", "value": True}]
