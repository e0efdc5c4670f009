from __future__ import annotations

import copy
from typing import Any

import pytest

from meshplane.networking import errors, gateway

BASE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "istiod-gateway", "namespace": "istio-system"},
    "spec": {
        "selector": {"istio": "eastwestgateway"},
        "servers": [
            {
                "port": {"name": "tls-istiod", "number": 15012, "protocol": "tls"},
                "tls": {"mode": "PASSTHROUGH"},
                "hosts": ["*"],
            }
        ],
    },
}


def _with(path: str, value: object) -> dict[str, Any]:
    obj = copy.deepcopy(BASE)
    cur: Any = obj
    keys = path.split(".")
    for k in keys[:-1]:
        cur = cur[int(k)] if k.isdigit() else cur[k]
    last = keys[-1]
    if value is KeyError:
        del cur[last]
    elif last.isdigit():
        cur[int(last)] = value
    else:
        cur[last] = value
    return obj


def test_parse() -> None:
    gw = gateway.parse(BASE)
    assert (gw.key, dict(gw.selector)) == ("istio-system/istiod-gateway", {"istio": "eastwestgateway"})
    (server,) = gw.servers
    assert server.port == gateway.Port(15012, gateway.ServerProtocol.TLS, "tls-istiod")
    assert server.passthrough and not server.auto_passthrough
    assert server.hosts == ("*",)
    assert gw.selects({"istio": "eastwestgateway", "app": "x"}) and not gw.selects({"istio": "ingress"})


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_all_served_versions(version: str) -> None:
    assert gateway.parse(_with("apiVersion", f"networking.istio.io/{version}")).name == "istiod-gateway"


@pytest.mark.parametrize(
    ("path", "value", "where", "problem"),
    [
        ("apiVersion", "networking.istio.io/v2", "apiVersion", "must be networking.istio.io"),
        ("kind", "VirtualService", "kind", "must be Gateway"),
        ("metadata.name", KeyError, "metadata.name", "is required"),
        ("spec.servers", [], "spec.servers", "must not be empty"),
        ("spec.servers.0.port.number", 70000, "spec.servers[0].port.number", "1-65535"),
        ("spec.servers.0.port.number", "15012", "spec.servers[0].port.number", "1-65535"),
        ("spec.servers.0.port.protocol", "QUIC", "spec.servers[0].port.protocol", "unknown protocol"),
        ("spec.servers.0.hosts", KeyError, "spec.servers[0].hosts", "is required"),
        ("spec.servers.0.hosts", ["bad host!"], "spec.servers[0].hosts[0]", "not a DNS name"),
        ("spec.servers.0.hosts", ["Bad_NS/x.com"], "spec.servers[0].hosts[0]", "namespace part"),
        ("spec.servers.0.tls", KeyError, "spec.servers[0].tls", "is required for protocol TLS"),
        ("spec.servers.0.tls", {"mode": "MAGIC"}, "spec.servers[0].tls.mode", "unknown mode"),
        ("spec.servers.0.tls", {"mode": "SIMPLE"}, "spec.servers[0].tls", "credentialName"),
        ("spec.selector", {"istio": 1}, "spec.selector.istio", "must be a string"),
    ],
)
def test_errors_name_the_field(path: str, value: object, where: str, problem: str) -> None:
    with pytest.raises(errors.ConfigError) as info:
        gateway.parse(_with(path, value))
    assert info.value.path == where
    assert problem in info.value.problem
    assert "Gateway istio-system/" in str(info.value)


def test_duplicate_server_names() -> None:
    obj = copy.deepcopy(BASE)
    server = obj["spec"]["servers"][0] | {"name": "s"}
    obj["spec"]["servers"] = [server, server]
    with pytest.raises(errors.ConfigError, match=r"servers\[1\]\.name: duplicate"):
        gateway.parse(obj)
