"""lab.podspec: env as the kubelet builds it, downward-API fields, probes, traffic-capture init."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshplane.lab import errors
from meshplane.lab.node import podspec
from tests.support import strategies

POD: dict[str, Any] = {
    "metadata": {
        "name": "web-1",
        "namespace": "shop",
        "uid": "u-1",
        "labels": {"app": "web", "version": "v1"},
        "annotations": {"note": 'say "hi"'},
    },
    "spec": {"nodeName": "cluster1-node", "serviceAccountName": "web", "containers": []},
    "status": {"podIP": "127.0.1.7", "hostIP": "127.0.1.1", "podIPs": [{"ip": "127.0.1.7"}]},
}
CONFIGMAPS = {("shop", "settings"): {"data": {"color": "blue", "size": "L"}}}
SECRETS = {("shop", "creds"): {"data": {"password": base64.b64encode(b"s3cret").decode()}}}
SOURCES = podspec.EnvSources(
    lambda ns, n: CONFIGMAPS.get((ns, n)), lambda ns, n: SECRETS.get((ns, n)), {"cpu": 4.0, "memory": 8e9}
)


def env_of(container: dict[str, Any], base: dict[str, str] | None = None) -> dict[str, str]:
    return podspec.container_env(POD, container, SOURCES, base or {})


def test_values_and_expansion_in_order() -> None:
    env = env_of(
        {
            "env": [
                {"name": "A", "value": "one"},
                {"name": "B", "value": "$(A)-two $$(A) $(UNDEFINED)"},
                {"name": "C", "value": "$(B)"},
            ]
        },
        {"BASE": "x"},
    )
    assert env == {
        "BASE": "x",
        "A": "one",
        "B": "one-two $(A) $(UNDEFINED)",
        "C": "one-two $(A) $(UNDEFINED)",
    }


def test_field_refs() -> None:
    refs = {
        "N": "metadata.name",
        "NS": "metadata.namespace",
        "UID": "metadata.uid",
        "IP": "status.podIP",
        "IPS": "status.podIPs",
        "HOST": "status.hostIP",
        "SA": "spec.serviceAccountName",
        "NODE": "spec.nodeName",
        "APP": "metadata.labels['app']",
        "NOTE": "metadata.annotations['note']",
    }
    env = env_of({"env": [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in refs.items()]})
    assert env == {
        "N": "web-1",
        "NS": "shop",
        "UID": "u-1",
        "IP": "127.0.1.7",
        "IPS": "127.0.1.7",
        "HOST": "127.0.1.1",
        "SA": "web",
        "NODE": "cluster1-node",
        "APP": "web",
        "NOTE": 'say "hi"',
    }
    assert podspec.field_value(POD, "metadata.labels") == 'app="web"\nversion="v1"'
    with pytest.raises(errors.PodSpecError, match=r"spec\.bogus"):
        podspec.field_value(POD, "spec.bogus")


def test_configmap_and_secret_refs() -> None:
    env = env_of(
        {
            "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CM_"}],
            "env": [
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
                {
                    "name": "OPT",
                    "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "x", "optional": True}},
                },
            ],
        }
    )
    assert env == {"CM_color": "blue", "CM_size": "L", "PW": "s3cret", "COLOR": "blue"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"configMapKeyRef": {"name": "missing", "key": "k"}}, 'configmap "missing" not found'),
        (
            {"configMapKeyRef": {"name": "settings", "key": "k"}},
            "couldn't find key k in Configmap shop/settings",
        ),
        ({"secretKeyRef": {"name": "gone", "key": "k"}}, 'secret "gone" not found'),
    ],
)
def test_missing_refs_are_container_config_errors(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ContainerConfigError, match=message):
        env_of({"env": [{"name": "X", "valueFrom": entry}]})


def test_resource_field_refs() -> None:
    c = {"resources": {"limits": {"cpu": "1500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}}}
    assert podspec.resource_value(c, {"resource": "limits.cpu"}, {}) == "2"
    assert podspec.resource_value(c, {"resource": "requests.cpu", "divisor": "1m"}, {}) == "100"
    assert podspec.resource_value(c, {"resource": "limits.memory", "divisor": "1Mi"}, {}) == "128"
    assert podspec.resource_value({}, {"resource": "limits.cpu"}, {"cpu": 4.0}) == "4"


def test_traffic_capture_init_containers() -> None:
    assert podspec.is_traffic_capture({"name": "istio-init", "image": "x"})
    assert podspec.is_traffic_capture({"name": "net", "image": "x", "command": ["/usr/sbin/iptables", "-L"]})
    assert podspec.is_traffic_capture({"name": "init", "args": ["istio-iptables", "-p", "15001"]})
    assert not podspec.is_traffic_capture({"name": "migrate", "args": ["version"]})


def test_probes() -> None:
    c = {
        "name": "app",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 2,
            "failureThreshold": 1,
        },
    }
    p = podspec.probe(c)
    assert p is not None and (p.kind, p.port, p.path, p.period, p.failure_threshold) == (
        "http",
        8080,
        "/ready",
        2,
        1,
    )
    assert podspec.probe({"name": "a"}) is None
    ex = podspec.probe({"name": "a", "readinessProbe": {"exec": {"command": ["true"]}}})
    assert ex is not None and ex.kind == "unsupported" and "exec" in ex.message
    bad = podspec.probe({"name": "a", "readinessProbe": {"tcpSocket": {"port": "nope"}}})
    assert bad is not None and bad.kind == "unsupported" and 'no port named "nope"' in bad.message


def test_has_sidecar() -> None:
    assert podspec.has_sidecar({"spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}]}})
    assert not podspec.has_sidecar({"spec": {"containers": [{"name": "app"}]}})


json_values = strategies.json_values(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10), max_leaves=12
)
env_entries = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(max_size=8) | st.integers(),
            "value": json_values,
            "valueFrom": st.dictionaries(
                st.sampled_from(["fieldRef", "configMapKeyRef", "secretKeyRef", "resourceFieldRef", "bogus"]),
                json_values,
                max_size=2,
            ),
        },
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(env_entries, json_values)
def test_junk_specs_raise_only_pod_spec_errors(env: list[Any], env_from: Any) -> None:
    container = {"name": "c", "env": env, "envFrom": env_from}
    try:
        out = podspec.container_env(POD, container, SOURCES, {})
    except errors.PodSpecError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())


@given(json_values)
def test_junk_probes_never_raise(raw: Any) -> None:
    podspec.probe({"name": "c", "readinessProbe": raw, "ports": raw})
