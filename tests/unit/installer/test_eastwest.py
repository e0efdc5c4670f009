"""gen-eastwest-gateway: meshplane's command, the sample script and the IstioOperator they print agree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meshplane.installer import config, eastwest, errors

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "samples" / "multicluster" / "gen-eastwest-gateway.sh"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshplane", "gen-eastwest-gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("--mesh", "mesh1", "--cluster", "cluster1", "--network", "network1"),
        ("--network", "net-2", "--revision", "canary"),
        ("--single-cluster",),
        ("--single-cluster", "--revision", "r1"),
    ],
)
def test_command_and_script_print_the_same(args: tuple[str, ...]) -> None:
    script, cli = _script(*args), _cli(*args)
    assert script.returncode == 0 and cli.returncode == 0, (script.stderr, cli.stderr)
    assert cli.stdout == script.stdout
    single = "--single-cluster" in args
    network = "" if single else args[args.index("--network") + 1]
    revision = args[args.index("--revision") + 1] if "--revision" in args else ""
    assert cli.stdout == eastwest.generate(network, revision, single)


def test_output_is_spec_section_2() -> None:
    doc = yaml.safe_load(eastwest.generate("network1"))
    assert doc["metadata"]["name"] == "eastwest"
    spec = doc["spec"]
    assert spec["revision"] == "" and spec["profile"] == "empty"
    (gw,) = spec["components"]["ingressGateways"]
    assert gw["name"] == "istio-eastwestgateway" and gw["enabled"] is True
    assert gw["label"] == {
        "istio": "eastwestgateway",
        "app": "istio-eastwestgateway",
        "topology.istio.io/network": "network1",
    }
    assert gw["k8s"]["env"] == [{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": "network1"}]
    assert [(p["name"], p["port"], p["targetPort"]) for p in gw["k8s"]["service"]["ports"]] == [
        ("status-port", 15021, 15021),
        ("tls", 15443, 15443),
        ("tls-istiod", 15012, 15012),
        ("tls-webhook", 15017, 15017),
    ]
    assert spec["values"] == {
        "gateways": {"istio-ingressgateway": {"injectionTemplate": "gateway"}},
        "global": {"network": "network1"},
    }
    # and it is a valid install input
    cfg = config.load([("<stdin>", eastwest.generate("network1"))])
    assert [g.name for g in cfg.gateways] == ["istio-eastwestgateway"] and not cfg.pilot_enabled


def test_network_is_required_unless_single_cluster() -> None:
    with pytest.raises(errors.InstallError, match="--network"):
        eastwest.generate()
    script, cli = _script("--mesh", "m"), _cli("--mesh", "m")
    assert script.returncode != 0 and cli.returncode != 0
    assert "--single-cluster or --network" in script.stdout and "--single-cluster or --network" in cli.stderr


def test_script_rejects_unknown_flags() -> None:
    r = _script("--network", "n", "--bogus")
    assert r.returncode == 1 and "Unsupported flag --bogus" in r.stderr
