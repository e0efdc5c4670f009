"""Our copies of Istio's samples parse and select the same objects with the guide's -l selectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from meshplane.model import injection

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _docs(rel: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((SAMPLES / rel).read_text()) if d]
    for d in docs:
        if not d["apiVersion"].endswith("istio.io/v1"):
            kubernetes_validate.validate(d, "1.32", strict=True)
    return docs


def _select(docs: list[dict[str, Any]], key: str, value: str) -> list[str]:
    """What `kubectl apply -l key=value` applies: objects whose own labels match."""
    return [
        f"{d['kind']}/{d['metadata']['name']}"
        for d in docs
        if d["metadata"].get("labels", {}).get(key) == value
    ]


def test_helloworld_selectors() -> None:
    docs = _docs("helloworld/helloworld.yaml")
    assert _select(docs, "service", "helloworld") == ["Service/helloworld"]
    assert _select(docs, "version", "v1") == ["Deployment/helloworld-v1"]
    assert _select(docs, "version", "v2") == ["Deployment/helloworld-v2"]
    svc = docs[0]
    assert svc["spec"]["ports"] == [{"port": 5000, "name": "http"}]
    assert svc["spec"]["selector"] == {"app": "helloworld"}
    for version in ("v1", "v2"):
        (dep,) = [d for d in docs if d["metadata"]["name"] == f"helloworld-{version}"]
        tmpl = dep["spec"]["template"]
        assert tmpl["metadata"]["labels"] == {"app": "helloworld", "version": version}
        (c,) = tmpl["spec"]["containers"]
        assert c["image"] == f"registry.istio.io/release/examples-helloworld-{version}:1.0"
        assert c["ports"] == [{"containerPort": 5000}]


def test_curl_and_sleep() -> None:
    for app in ("curl", "sleep"):
        docs = _docs(f"{app}/{app}.yaml")
        assert [f"{d['kind']}/{d['metadata']['name']}" for d in docs] == [
            f"ServiceAccount/{app}",
            f"Service/{app}",
            f"Deployment/{app}",
        ]
        pod = docs[2]["spec"]["template"]
        assert pod["metadata"]["labels"] == {"app": app}
        assert pod["spec"]["serviceAccountName"] == app
        (c,) = pod["spec"]["containers"]
        assert c["name"] == app and c["image"].startswith("docker.io/curlimages/curl:8.")
        assert c["command"] == ["/bin/sleep", "infinity"]


def test_expose_istiod() -> None:
    gw, vs = _docs("multicluster/expose-istiod.yaml")
    assert (gw["kind"], gw["metadata"]["name"]) == ("Gateway", "istiod-gateway")
    assert gw["spec"]["selector"] == {"istio": "eastwestgateway"}
    servers = {s["port"]["number"]: s for s in gw["spec"]["servers"]}
    assert (
        servers[15012]["port"]["name"] == "tls-istiod"
        and servers[15017]["port"]["name"] == "tls-istiodwebhook"
    )
    for s in servers.values():
        assert s["port"]["protocol"] == "tls" and s["tls"] == {"mode": "PASSTHROUGH"} and s["hosts"] == ["*"]
    assert (vs["kind"], vs["metadata"]["name"]) == ("VirtualService", "istiod-vs")
    assert vs["spec"]["hosts"] == ["*"] and vs["spec"]["gateways"] == ["istiod-gateway"]
    routes = {r["match"][0]["port"]: r for r in vs["spec"]["tls"]}
    for port, target in ((15012, 15012), (15017, 443)):
        assert routes[port]["match"][0]["sniHosts"] == ["*"]
        (dest,) = routes[port]["route"]
        assert dest["destination"] == {
            "host": "istiod.istio-system.svc.cluster.local",
            "port": {"number": target},
        }


def test_sample_namespaces_get_injected() -> None:
    # the verify step labels `sample` istio-injection=enabled; the pods carry no opt-out
    for rel in ("helloworld/helloworld.yaml", "curl/curl.yaml", "sleep/sleep.yaml"):
        for d in _docs(rel):
            if d["kind"] == "Deployment":
                labels = d["spec"]["template"]["metadata"]["labels"]
                assert injection.selected({"istio-injection": "enabled"}, labels)
