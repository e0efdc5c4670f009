import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshplane.agent import config, csr, errors
from meshplane.model.proxy import ProxyType

BASE = {
    "POD_NAME": "sleep-abc",
    "POD_NAMESPACE": "sample",
    "INSTANCE_IP": "127.0.2.7",
    "SERVICE_ACCOUNT": "sleep",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400.0), ("60s", 60.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1.5s", 1.5), ("2m3s", 123.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert config.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "h", "5x", "1h 2m", "-3s", "s5"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(errors.ConfigError):
        config.parse_duration(text)


@given(st.text(max_size=20))
def test_parse_duration_only_raises_config_errors(text: str) -> None:
    try:
        assert config.parse_duration(text) >= 0
    except errors.ConfigError:
        pass


def test_defaults_follow_istio() -> None:
    cfg = config.from_env(BASE, ProxyType.SIDECAR)
    assert cfg.discovery_address == "istiod.istio-system.svc:15012"
    assert cfg.ca_address == cfg.discovery_address
    assert cfg.discovery_sni == "istiod.istio-system.svc"
    assert cfg.secret_ttl == 86400
    assert cfg.key_algorithm is csr.KeyAlgorithm.RSA
    assert cfg.cluster_id == "Kubernetes"
    assert cfg.localhost == "127.0.0.1"
    assert cfg.metadata["MESHPLANE_LOCALHOST"] == "127.0.0.1"
    assert cfg.identity == "spiffe://cluster.local/ns/sample/sa/sleep"
    assert cfg.node_id == "sidecar~127.0.2.7~sleep-abc.sample~sample.svc.cluster.local"
    assert cfg.control_plane_tls
    assert cfg.drain_seconds == 5


def test_injected_env_of_a_cluster2_pod() -> None:
    env = {
        **BASE,
        "CA_ADDR": "istiod.istio-system.svc:15012",
        "PROXY_CONFIG": json.dumps({"discoveryAddress": "istiod.istio-system.svc:15012", "concurrency": 1}),
        "ISTIO_META_CLUSTER_ID": "cluster2",
        "ISTIO_META_NETWORK": "network1",
        "ISTIO_META_MESH_ID": "mesh1",
        "ISTIO_META_MESHPLANE_LOCALHOST": "127.0.4.9",
        "ISTIO_METAJSON_LABELS": '{"app": "sleep"}',
        "TRUST_DOMAIN": "cluster.local",
        "SECRET_TTL": "60s",
        "ECC_SIGNATURE_ALGORITHM": "ECDSA",
    }
    cfg = config.from_env(env, ProxyType.SIDECAR)
    assert cfg.cluster_id == "cluster2"
    assert cfg.concurrency == 1
    assert cfg.secret_ttl == 60
    assert cfg.key_algorithm is csr.KeyAlgorithm.ECDSA
    assert cfg.localhost == "127.0.4.9"
    assert cfg.metadata["MESHPLANE_LOCALHOST"] == "127.0.4.9"
    assert cfg.metadata["CLUSTER_ID"] == "cluster2"
    assert cfg.metadata["NETWORK"] == "network1"
    assert cfg.metadata["MESH_ID"] == "mesh1"
    assert cfg.metadata["LABELS"] == {"app": "sleep"}
    assert cfg.metadata["NAMESPACE"] == "sample"
    assert cfg.metadata["SERVICE_ACCOUNT"] == "sleep"
    assert cfg.metadata["INSTANCE_IPS"] == "127.0.2.7"


def test_proxy_config_yaml_and_proxy_metadata_override_env() -> None:
    env = {
        **BASE,
        "PROXY_CONFIG": "discoveryAddress: 10.0.0.1:15012\nproxyMetadata:\n  ISTIO_META_NETWORK: net9\n",
        "ISTIO_META_NETWORK": "network1",
    }
    cfg = config.from_env(env, ProxyType.ROUTER)
    assert cfg.discovery_address == "10.0.0.1:15012"
    assert cfg.metadata["NETWORK"] == "net9"
    assert cfg.node_id.startswith("router~")


def test_downward_labels_and_delta() -> None:
    env = {**BASE, "ISTIO_METAJSON_LABELS": '{"app": "sleep"}', "ISTIO_DELTA_XDS": "true"}
    cfg = config.from_env(env, ProxyType.SIDECAR, {"version": "v1", "pod-template-hash": "abc"})
    assert cfg.metadata["LABELS"] == {"app": "sleep", "version": "v1"}
    assert cfg.delta
    assert not config.from_env(BASE, ProxyType.SIDECAR).delta


def test_istiod_san_overrides_the_verified_name() -> None:
    env = {
        **BASE,
        "PROXY_CONFIG": '{"discoveryAddress": "127.0.3.1:15012"}',
        "ISTIOD_SAN": "istiod.istio-system.svc",
    }
    cfg = config.from_env(env, ProxyType.SIDECAR)
    assert cfg.discovery_sni == "istiod.istio-system.svc"


def test_control_plane_auth_none_means_plaintext() -> None:
    env = {
        **BASE,
        "PROXY_CONFIG": '{"discoveryAddress": "127.0.0.1:15010", "controlPlaneAuthPolicy": "NONE"}',
    }
    assert not config.from_env(env, ProxyType.SIDECAR).control_plane_tls


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"POD_NAME": ""}, "POD_NAME"),
        ({"INSTANCE_IP": "not-an-ip"}, "INSTANCE_IP"),
        ({"ISTIO_META_MESHPLANE_LOCALHOST": "x"}, "MESHPLANE_LOCALHOST"),
        ({"PROXY_CONFIG": "[1, 2]"}, "mapping"),
        ({"PROXY_CONFIG": "{bad: [yaml"}, "neither JSON nor YAML"),
        ({"PROXY_CONFIG": '{"discoveryAddress": "nohost"}'}, "host:port"),
        ({"PROXY_CONFIG": '{"discoveryAddress": "h:99999"}'}, "invalid port"),
        ({"CA_ADDR": "ca:"}, "invalid port"),
        ({"SECRET_TTL": "forever"}, "invalid duration"),
        ({"SECRET_TTL": "100ms"}, "at least 1s"),
        ({"ISTIO_METAJSON_LABELS": "{"}, "not valid JSON"),
        ({"ISTIO_METAJSON_LABELS": "[1]"}, "JSON object"),
        ({"SERVICE_ACCOUNT": "Bad_SA"}, "service account"),
        ({"TERMINATION_DRAIN_DURATION_SECONDS": "soon"}, "integer"),
        ({"PROXY_CONFIG": '{"controlPlaneAuthPolicy": "MAYBE"}'}, "controlPlaneAuthPolicy"),
    ],
)
def test_bad_env_is_named(extra: dict[str, str], message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        config.from_env({**BASE, **extra}, ProxyType.SIDECAR)


@given(
    st.dictionaries(
        st.sampled_from(["PROXY_CONFIG", "SECRET_TTL", "INSTANCE_IP", "CA_ADDR", "ISTIO_METAJSON_X"]),
        st.text(max_size=40),
    )
)
def test_any_env_gives_config_or_config_error(extra: dict[str, str]) -> None:
    try:
        config.from_env({**BASE, **extra}, ProxyType.SIDECAR)
    except errors.ConfigError:
        pass


@pytest.mark.parametrize(
    ("domain", "ns", "expected"),
    [
        ("sample.svc.cluster.local", "sample", "cluster.local"),
        ("sample.svc.corp.example", "sample", "corp.example"),
        ("other.svc.cluster.local", "sample", "cluster.local"),
        ("cluster.local", "sample", "cluster.local"),
    ],
)
def test_dns_domain_from_pilot_agent_flag(domain: str, ns: str, expected: str) -> None:
    assert config.dns_domain_from_flag(domain, ns) == expected


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("default:info", "INFO"),
        ("ads:debug,default:warn", "WARNING"),
        ("error", "ERROR"),
        ("ads:debug", "DEBUG"),
    ],
)
def test_log_output_level(value: str, level: str) -> None:
    assert config.log_level_from_flag(value) == level


def test_log_output_level_rejects_unknown() -> None:
    with pytest.raises(errors.ConfigError, match="unknown level 'loud'"):
        config.log_level_from_flag("default:loud")
