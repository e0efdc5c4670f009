import pytest

from meshplane.discovery import errors, options


def test_env_fills_what_flags_leave_unset() -> None:
    env = {
        "CLUSTER_ID": "cluster1",
        "POD_NAMESPACE": "mesh-system",
        "EXTERNAL_ISTIOD": "true",
        "PILOT_DEBOUNCE_AFTER": "50ms",
        "PILOT_DEBOUNCE_MAX": "2s",
        "PILOT_REMOTE_CLUSTER_TIMEOUT": "5s",
        "PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS": "exec, tokenFile",
        "POD_NAME": "istiod-abc",
    }
    o = options.build({}, env)
    assert (o.cluster_id, o.namespace, o.external_istiod, o.pod_name) == (
        "cluster1",
        "mesh-system",
        True,
        "istiod-abc",
    )
    assert (o.debounce_after, o.debounce_max, o.remote_cluster_timeout) == (0.05, 2.0, 5.0)
    assert o.insecure_kubeconfig_options == ("exec", "tokenFile")


def test_flags_win_over_env() -> None:
    o = options.build(
        {"cluster_id": "flag", "debounce_after": "10ms"}, {"CLUSTER_ID": "env", "PILOT_DEBOUNCE_AFTER": "1s"}
    )
    assert o.cluster_id == "flag" and o.debounce_after == pytest.approx(0.01)


def test_defaults_are_istios() -> None:
    o = options.build({}, {})
    assert (o.cluster_id, o.namespace, o.xds_plaintext_port, o.secure_grpc_port, o.monitoring_port) == (
        "Kubernetes",
        "istio-system",
        15010,
        15012,
        15014,
    )
    assert (o.debounce_after, o.debounce_max, o.remote_cluster_timeout) == (0.1, 10.0, 30.0)


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({}, {"EXTERNAL_ISTIOD": "maybe"}, "EXTERNAL_ISTIOD"),
        ({}, {"PILOT_DEBOUNCE_AFTER": "soon"}, "PILOT_DEBOUNCE_AFTER"),
        ({"monitoring_port": 70000}, {}, "--monitoring-port"),
        ({}, {"PILOT_DEBOUNCE_AFTER": "20s"}, "must not exceed"),
        ({"cluster_id": ""}, {"CLUSTER_ID": ""}, "CLUSTER_ID"),
    ],
)
def test_bad_values_name_the_option(flags: dict[str, object], env: dict[str, str], message: str) -> None:
    with pytest.raises(errors.OptionsError, match=message):
        options.build(flags, env)


def test_root_cert_transition_defaults_to_unset_and_is_validated() -> None:
    assert options.build({}, {}).root_cert_transition is None
    assert options.build({}, {"MESHPLANE_ROOT_CERT_TRANSITION": "1h"}).root_cert_transition == 3600.0
    with pytest.raises(errors.OptionsError, match="MESHPLANE_ROOT_CERT_TRANSITION"):
        options.build({}, {"MESHPLANE_ROOT_CERT_TRANSITION": "soon"})


def test_self_signed_root_rotator_settings_are_istios() -> None:
    o = options.build({}, {})
    assert (o.root_cert_check_interval, o.root_cert_grace_percent, o.root_cert_jitter) == (3600.0, 20, True)
    o = options.build(
        {},
        {
            "CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL": "10m",
            "CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE": "50",
            "CITADEL_ENABLE_JITTER_FOR_ROOT_CERT_ROTATOR": "false",
            "CITADEL_SELF_SIGNED_CA_CERT_TTL": "8760h",
        },
    )
    assert (o.root_cert_check_interval, o.root_cert_grace_percent, o.root_cert_jitter) == (600.0, 50, False)
    assert o.self_signed_ca_cert_ttl == 8760 * 3600.0
    for bad in ("0", "101", "x"):
        with pytest.raises(errors.OptionsError, match="GRACE_PERIOD_PERCENTILE"):
            options.build({}, {"CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE": bad})
