from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshplane.agent import bootstrap
from meshplane.agent import errors as agent_errors
from meshplane.model.proxy import ProxyType
from tests.support import envoyproc, secpki

REPO = Path(__file__).resolve().parents[3]


def _opts(**kw: Any) -> bootstrap.BootstrapOptions:
    base: dict[str, Any] = dict(
        proxy_type=ProxyType.SIDECAR,
        pod_name="helloworld-v1-abc",
        namespace="sample",
        ips=("127.0.1.5",),
        discovery_address="127.0.0.1:15010",
    )
    base.update(kw)
    return bootstrap.BootstrapOptions(**base)


def _cluster(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["static_resources"]["clusters"] if c["name"] == name)


def test_node_identity_and_metadata() -> None:
    env = {
        "POD_NAME": "helloworld-v1-abc",
        "POD_NAMESPACE": "sample",
        "SERVICE_ACCOUNT": "helloworld",
        "ISTIO_META_CLUSTER_ID": "cluster2",
        "ISTIO_META_NETWORK": "network1",
        "ISTIO_META_MESHPLANE_LOCALHOST": "127.0.102.5",
        "ISTIO_META_REQUESTED_NETWORK_VIEW": "network1",
        "ISTIO_METAJSON_LABELS": '{"app": "helloworld", "version": "v1"}',
        "UNRELATED": "x",
    }
    meta = bootstrap.metadata_from_env(
        env, {"pod-template-hash": "abc", "security.istio.io/tlsMode": "istio"}
    )
    doc = bootstrap.build(_opts(metadata=meta, sds_socket="/run/sds.sock"))
    node = doc["node"]
    assert node["id"] == "sidecar~127.0.1.5~helloworld-v1-abc.sample~sample.svc.cluster.local"
    assert node["cluster"] == "helloworld.sample"
    md = node["metadata"]
    assert md["CLUSTER_ID"] == "cluster2" and md["NETWORK"] == "network1"
    assert (
        md["NAME"] == "helloworld-v1-abc"
        and md["NAMESPACE"] == "sample"
        and md["SERVICE_ACCOUNT"] == "helloworld"
    )
    assert md["INSTANCE_IPS"] == "127.0.1.5"
    assert md["LABELS"] == {"app": "helloworld", "version": "v1", "security.istio.io/tlsMode": "istio"}
    assert md["REQUESTED_NETWORK_VIEW"] == "network1"
    assert "UNRELATED" not in md and "MESHPLANE_SDS" not in md
    assert doc["admin"]["address"]["socket_address"] == {"address": "127.0.102.5", "port_value": 15000}


def test_ads_over_the_xds_grpc_cluster() -> None:
    doc = bootstrap.build(_opts())
    dyn = doc["dynamic_resources"]
    assert dyn["ads_config"]["api_type"] == "GRPC"
    assert dyn["ads_config"]["grpc_services"][0]["envoy_grpc"]["cluster_name"] == "xds-grpc"
    assert dyn["cds_config"]["ads"] == {} and dyn["lds_config"]["ads"] == {}
    xds = _cluster(doc, "xds-grpc")
    assert xds["type"] == "STATIC"
    assert xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ] == {
        "address": "127.0.0.1",
        "port_value": 15010,
    }
    assert "transport_socket" not in xds
    assert doc["node"]["metadata"]["MESHPLANE_SDS"] == "false"  # no SDS socket: no certificates
    assert bootstrap.build(_opts(delta=True))["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"


def test_dns_name_unix_socket_and_headers() -> None:
    dns = _cluster(bootstrap.build(_opts(discovery_address="istiod.istio-system.svc:15012")), "xds-grpc")
    assert dns["type"] == "STRICT_DNS"
    unix = _cluster(bootstrap.build(_opts(discovery_address="unix:///etc/istio/proxy/XDS")), "xds-grpc")
    assert unix["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "pipe": {"path": "/etc/istio/proxy/XDS"}
    }
    doc = bootstrap.build(_opts(xds_headers=(("clusterid", "cluster2"),)))
    assert doc["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"] == [
        {"key": "clusterid", "value": "cluster2"}
    ]


def test_tls_to_15012_and_sds(tmp_path: Path) -> None:
    root = tmp_path / "root-cert.pem"
    root.write_text("-----BEGIN CERTIFICATE-----\n")
    doc = bootstrap.build(
        _opts(
            discovery_address="istiod.istio-system.svc:15012",
            xds_tls=bootstrap.XdsTls(str(root)),
            sds_socket="@sds-abc",
            admin_socket="/etc/istio/proxy/admin.sock",
        )
    )
    tls = _cluster(doc, "xds-grpc")["transport_socket"]["typed_config"]
    assert tls["sni"] == "istiod.istio-system.svc"
    vc = tls["common_tls_context"]["validation_context"]
    assert vc["trusted_ca"] == {"filename": str(root)}
    assert vc["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "istiod.istio-system.svc"}}
    ]
    sds = _cluster(doc, "sds-grpc")
    assert sds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "pipe": {"path": "@sds-abc"}
    }
    assert doc["admin"]["address"] == {"pipe": {"path": "/etc/istio/proxy/admin.sock"}}
    assert "MESHPLANE_SDS" not in doc["node"]["metadata"]


@pytest.mark.parametrize(
    ("kw", "problem"),
    [
        ({"ips": ()}, "no instance IP"),
        ({"ips": ("10.0.0.300",)}, "not an IP address"),
        ({"namespace": "Sample_NS"}, "DNS-1123"),
        ({"pod_name": "a b"}, "pod name"),
        ({"discovery_address": "istiod"}, "HOST:PORT"),
        ({"discovery_address": "istiod:0"}, "valid port"),
        ({"discovery_address": "unix://"}, "socket path"),
        ({"admin_address": "127.0.0.1:1", "admin_socket": "/x"}, "not both"),
        ({"xds_tls": bootstrap.XdsTls("/nonexistent/root.pem")}, "does not exist"),
        ({"metadata": {"bad key": "x"}}, "metadata key"),
        ({"metadata": {"MESHPLANE_LOCALHOST": "localhost"}}, "MESHPLANE_LOCALHOST"),
        ({"xds_headers": (("ClusterID", "x"),)}, "lower-case"),
    ],
)
def test_bad_input_says_what_is_wrong(kw: dict[str, Any], problem: str) -> None:
    with pytest.raises(agent_errors.BootstrapError, match=problem):
        bootstrap.build(_opts(**kw))


def test_bad_metajson() -> None:
    with pytest.raises(agent_errors.BootstrapError, match="ISTIO_METAJSON_LABELS"):
        bootstrap.metadata_from_env({"ISTIO_METAJSON_LABELS": "{not json"})
    with pytest.raises(agent_errors.BootstrapError, match="must map label names to strings"):
        bootstrap.metadata_from_env({"ISTIO_METAJSON_LABELS": '{"a": 1}'})


_ENV_KEYS = st.sampled_from(["ISTIO_META_X", "ISTIO_METAJSON_LABELS", "ISTIO_METAJSON_Y", "POD_NAME", "Z"])


@given(st.dictionaries(_ENV_KEYS, st.text(max_size=30)))
def test_any_env_gives_metadata_or_a_bootstrap_error(env: dict[str, str]) -> None:
    try:
        meta = bootstrap.metadata_from_env(env)
    except agent_errors.BootstrapError:
        return
    assert isinstance(meta, dict)


def test_downward_api_labels() -> None:
    text = 'app="helloworld"\nversion="v1"\nbroken\nq="a \\"quoted\\" value"\n'
    assert bootstrap.parse_downward_labels(text) == {
        "app": "helloworld",
        "version": "v1",
        "q": 'a "quoted" value',
    }


@pytest.mark.envoy
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"proxy_type": ProxyType.ROUTER, "delta": True, "discovery_address": "istiod.istio-system.svc:15012"},
        {
            "discovery_address": "unix:///tmp/xds.sock",
            "sds_socket": "/tmp/sds.sock",
            "admin_socket": "/tmp/admin.sock",
        },
        {"xds_tls": "ROOT", "sds_socket": "@sds", "xds_headers": (("clusterid", "cluster1"),)},
    ],
)
def test_envoy_accepts_the_bootstrap(kw: dict[str, Any], tmp_path: Path) -> None:
    if kw.get("xds_tls") == "ROOT":
        root = tmp_path / "root.pem"
        root.write_bytes(_self_signed_pem())  # Envoy loads it even in validate mode
        kw = {**kw, "xds_tls": bootstrap.XdsTls(str(root))}
    result = envoyproc.validate(bootstrap.build(_opts(**kw)))
    assert result.returncode == 0, result.stdout + result.stderr


def _self_signed_pem() -> bytes:
    return secpki.CA("test root").pem


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "meshplane", "agent", "bootstrap", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_writes_the_bootstrap(tmp_path: Path) -> None:
    out = tmp_path / "envoy" / "bootstrap.json"
    env = {
        "POD_NAME": "ew-1",
        "POD_NAMESPACE": "istio-system",
        "INSTANCE_IP": "127.0.1.20",
        "ISTIO_META_CLUSTER_ID": "cluster1",
        "PROXY_CONFIG": json.dumps({"discoveryAddress": "127.0.0.1:15010"}),
        "ISTIO_METAJSON_LABELS": json.dumps({"istio": "eastwestgateway"}),
    }
    result = _cli(["router", "--delta", "-o", str(out), "--meta", "REQUESTED_NETWORK_VIEW=network1"], env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["node"]["id"] == "router~127.0.1.20~ew-1.istio-system~istio-system.svc.cluster.local"
    assert doc["node"]["metadata"]["REQUESTED_NETWORK_VIEW"] == "network1"
    assert doc["node"]["metadata"]["LABELS"] == {"istio": "eastwestgateway"}
    assert doc["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"
    assert _cluster(doc, "xds-grpc")["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"][
        "address"
    ]["socket_address"] == {"address": "127.0.0.1", "port_value": 15010}


def test_cli_bad_input_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bootstrap.json"
    result = _cli(
        ["-o", str(out), "--discovery-address", "no-port"], {"POD_NAME": "p", "INSTANCE_IP": "127.0.0.1"}
    )
    assert result.returncode != 0
    assert "discovery address 'no-port' is not HOST:PORT" in result.stderr
    assert not out.exists() and not list(tmp_path.iterdir())
    result = _cli(["--meta", "novalue"], {"POD_NAME": "p", "INSTANCE_IP": "127.0.0.1"})
    assert result.returncode != 0 and "--meta 'novalue' is not KEY=VALUE" in result.stderr
