"""IstioOperator input: merging, --set, validation errors that name their path."""

from __future__ import annotations

import pytest

from meshplane.installer import config, errors, iop
from tests.support.installenv import CLUSTER1_YAML as CLUSTER1


def _load(*texts: str, sets: tuple[str, ...] = ()) -> config.InstallConfig:
    return config.load([(f"f{i}.yaml", t) for i, t in enumerate(texts)], sets)


def _issues(*texts: str, sets: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(errors.ConfigError) as exc:
        _load(*texts, sets=sets)
    return [str(i) for i in exc.value.issues]


def test_guide_primary_with_external_istiod_flag() -> None:
    cfg = _load(CLUSTER1, sets=("values.pilot.env.EXTERNAL_ISTIOD=true",))
    assert (cfg.profile, cfg.cluster_id, cfg.network, cfg.mesh_id) == (
        "default",
        "cluster1",
        "network1",
        "mesh1",
    )
    assert cfg.external_istiod is True
    assert cfg.pilot_env["EXTERNAL_ISTIOD"] == "true"
    assert cfg.runs_control_plane and not cfg.remote


def test_global_external_istiod_means_the_same() -> None:
    text = CLUSTER1 + "      externalIstiod: true\n"
    cfg = _load(text)
    assert cfg.external_istiod is True
    assert cfg.pilot_env == {"EXTERNAL_ISTIOD": "true"}


def test_pilot_env_wins_over_global_external_istiod() -> None:
    cfg = _load(CLUSTER1 + "      externalIstiod: true\n", sets=("values.pilot.env.EXTERNAL_ISTIOD=false",))
    assert cfg.external_istiod is False
    assert cfg.pilot_env["EXTERNAL_ISTIOD"] == "false"


def test_files_merge_in_order_and_lists_are_replaced() -> None:
    first = CLUSTER1 + "  components:\n    ingressGateways:\n    - name: a\n    - name: b\n"
    second = "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  values:\n    global:\n"
    second += "      network: net2\n  components:\n    ingressGateways:\n    - name: c\n"
    cfg = _load(first, second)
    assert cfg.network == "net2" and cfg.mesh_id == "mesh1"
    assert [g.name for g in cfg.gateways] == ["c"]


def test_set_typing_follows_the_schema() -> None:
    cfg = _load(
        CLUSTER1,
        sets=(
            "values.global.tag=1.2",
            "values.global.hub=example.com/mesh",
            "values.pilot.env.PILOT_DEBOUNCE_AFTER=100ms",
            "values.pilot.env.X_NUM=5",
            "meshConfig.trustDomain=example.org",
        ),
    )
    assert cfg.tag == "1.2" and cfg.hub == "example.com/mesh"
    assert cfg.pilot_image == "example.com/mesh/pilot:1.2"
    assert cfg.proxy_image == "example.com/mesh/proxyv2:1.2"
    assert cfg.pilot_env["PILOT_DEBOUNCE_AFTER"] == "100ms" and cfg.pilot_env["X_NUM"] == "5"
    assert cfg.trust_domain == "example.org"


def test_set_list_selectors_and_escaped_dots() -> None:
    base = CLUSTER1 + "  components:\n    ingressGateways:\n    - name: gw-a\n      enabled: true\n"
    cfg = _load(
        base,
        sets=(
            "components.ingressGateways[name:gw-a].label.app=gw-a",
            "components.ingressGateways[1].name=gw-b",
            r"components.ingressGateways[1].label.example\.com/x=y",
            "spec.revision=canary",
        ),
    )
    assert [g.name for g in cfg.gateways] == ["gw-a", "gw-b"]
    assert cfg.gateways[0].labels == {"app": "gw-a"}
    assert cfg.gateways[1].labels == {"example.com/x": "y"}
    assert cfg.revision == "canary"


def test_spec_hub_tag_are_values_global_hub_tag() -> None:
    cfg = _load(CLUSTER1 + "  hub: reg.example/x\n  tag: 7\n")
    assert cfg.pilot_image == "reg.example/x/pilot:7"


def test_istio_parse_value() -> None:
    assert iop.istio_parse_value("5") == 5
    assert iop.istio_parse_value("1.5") == 1.5
    assert iop.istio_parse_value("true") is True
    assert iop.istio_parse_value("F") is False
    assert iop.istio_parse_value(r"a\,b") == "a,b"
    assert iop.istio_parse_value("abc") == "abc"


@pytest.mark.parametrize(
    ("text", "sets", "expected"),
    [
        (CLUSTER1 + "      foo: bar\n", (), "spec.values.global.foo: unknown field"),
        (CLUSTER1 + "      logAsJson: true\n", (), "spec.values.global.logAsJson: an Istio setting"),
        (
            CLUSTER1.replace("clusterName: cluster1", "clusterName: [a]"),
            (),
            "spec.values.global.multiCluster.clusterName: expected a string",
        ),
        (
            CLUSTER1,
            ("values.global.externalIstiod=maybe",),
            "spec.values.global.externalIstiod: expected a boolean",
        ),
        (
            CLUSTER1.replace("      multiCluster:\n        clusterName: cluster1\n", ""),
            ("values.pilot.env.EXTERNAL_ISTIOD=true",),
            "spec.values.global.multiCluster.clusterName: required",
        ),
        (
            CLUSTER1 + "  profile: demo\n",
            (),
            "spec.profile: 'demo' is an Istio profile that meshplane does not",
        ),
        (CLUSTER1 + "  profile: nope\n", (), "spec.profile: 'nope' is unknown"),
        (CLUSTER1 + "  revision: Bad_Rev\n", (), "spec.revision: 'Bad_Rev' is not a valid revision"),
        (
            CLUSTER1.replace("network1", "net work"),
            (),
            "spec.values.global.network: 'net work' is not a valid",
        ),
        (
            CLUSTER1,
            ("components.ingressGateways[0].name=Bad",),
            "spec.components.ingressGateways[0].name: 'Bad'",
        ),
        (CLUSTER1, ("nope",), "--set nope: expected PATH=VALUE"),
        (CLUSTER1, ("values..x=1",), "--set values..x=1: empty path segment"),
        (CLUSTER1, ("components.ingressGateways[name:zz].enabled=true",), "no list element with name=zz"),
        (CLUSTER1.replace("IstioOperator", "Deployment"), (), "f0.yaml: kind: must be 'IstioOperator'"),
        (CLUSTER1.replace("install.istio.io/v1alpha1", "v1"), (), "f0.yaml: apiVersion: must be"),
        (CLUSTER1 + "      meshID: again\n", (), "f0.yaml: invalid YAML at line 10"),
        ("spec: [\n", (), "f0.yaml: invalid YAML"),
        ("- a\n- b\n", (), "f0.yaml: an IstioOperator document must be a mapping"),
        (CLUSTER1 + "---\n" + CLUSTER1, (), "f0.yaml: expected exactly one IstioOperator document, found 2"),
        (
            CLUSTER1 + "  components:\n    ingressGateways:\n    - name: gw\n      k8s:\n        service:\n"
            "          ports:\n          - name: p\n            port: 70000\n",
            (),
            "spec.components.ingressGateways[0].k8s.service.ports[0].port: 70000 is not a port number",
        ),
        (CLUSTER1, ("values.global.proxy.resources.requests.cpu=lots",), "is not a Kubernetes quantity"),
    ],
)
def test_bad_input_names_its_path(text: str, sets: tuple[str, ...], expected: str) -> None:
    issues = _issues(text, sets=sets)
    assert any(expected in i for i in issues), issues


def test_remote_without_remote_pilot_address() -> None:
    text = "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  profile: remote\n"
    issues = _issues(text)
    assert len(issues) == 1
    assert issues[0].startswith("spec.values.global.remotePilotAddress: required with the remote profile")


def test_every_problem_is_reported_at_once() -> None:
    text = CLUSTER1 + "      foo: 1\n      bar: 2\n"
    assert len(_issues(text)) == 2


def test_not_utf8_and_too_large() -> None:
    with pytest.raises(errors.ConfigError, match="not UTF-8"):
        config.load([("x", b"\xff\xfe")])
    with pytest.raises(errors.ConfigError, match="larger than"):
        config.load([("x", "a" * (iop.MAX_INPUT_BYTES + 1))])


def test_remote_pilot_address_must_be_ip_or_host() -> None:
    text = (
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  profile: remote\n"
        "  values:\n    global:\n      remotePilotAddress: 'not a host!'\n"
    )
    assert any("neither an IP address nor a host name" in i for i in _issues(text))
