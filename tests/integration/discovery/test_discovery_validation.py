"""The validating webhook as istiod serves it: `install`'s ValidatingWebhookConfigurations applied
to a dev cluster with the control plane running; the control plane patches their caBundle and, once
a dry-run of an invalid Gateway is denied, switches them to failurePolicy Fail; then the real
`kubectl apply` of an invalid AuthorizationPolicy and of an invalid VirtualService is refused with
the field named, and valid ones are stored."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import yaml

from meshplane.discovery import app
from meshplane.installer import config, render
from tests.integration.discovery.test_discovery_injection import _route_istiod
from tests.support import installenv
from tests.support.clusters import ThreadedCluster, kubectl, kubectl_json, lightkube_client, unique
from tests.support.wait import wait_for

VALIDATORS = ("istio-validator-istio-system", "istiod-default-validator")

INVALID_AP = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: bad-ports, namespace: {ns}}}
spec:
  rules:
  - to:
    - operation: {{ports: ["http"]}}
"""
INVALID_VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bad-weights, namespace: {ns}}}
spec:
  hosts: [helloworld]
  http:
  - route:
    - destination: {{host: helloworld}}
      weight: 60
    - destination: {{host: helloworld, subset: v2}}
      weight: 60
"""
VALID_AP = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: allow-sleep, namespace: {ns}}}
spec:
  rules:
  - from:
    - source: {{principals: ["cluster.local/ns/sample/sa/sleep"]}}
"""


def _install_objects() -> str:
    objs = render.render(config.load([("in.yaml", installenv.CLUSTER1_YAML)], ()), None)
    wanted = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
    wanted += [o for o in objs if o["kind"] == "ValidatingWebhookConfiguration"]
    assert sorted(o["metadata"]["name"] for o in wanted if o["kind"] != "CustomResourceDefinition") == sorted(
        VALIDATORS
    )
    return yaml.safe_dump_all(wanted)


async def _kubectl(kc: Path, *args: str, input_text: str | None = None, check: bool = True) -> Any:
    """The real kubectl off the event loop: the webhook it makes the API server call is served here."""
    return await asyncio.to_thread(kubectl, kc, *args, input_text=input_text, check=check)


def _patched(kc: Path, bundle: str) -> bool:
    want = base64.b64encode(bundle.encode()).decode()
    for name in VALIDATORS:
        vwc: dict[str, Any] = kubectl_json(kc, "get", "validatingwebhookconfiguration", name)
        for hook in vwc["webhooks"]:
            if hook.get("failurePolicy") != "Fail" or hook["clientConfig"].get("caBundle") != want:
                return False
    return True


async def test_invalid_istio_config_is_refused_by_kubectl_apply_with_the_field_named(
    clusters: tuple[ThreadedCluster, ThreadedCluster], discovery: app.Discovery, tmp_path: Path
) -> None:
    c1, _ = clusters
    kc = c1.write_kubeconfig(tmp_path / "kubeconfig")
    w1 = lightkube_client(c1.kubeconfig)
    assert discovery.ports.webhook is not None and discovery.security is not None
    await _route_istiod(w1, discovery.ports.webhook)
    await w1.close()
    await _kubectl(kc, "apply", "-f", "-", input_text=_install_objects())
    ns = unique("sample")
    await _kubectl(kc, "create", "namespace", ns)

    # the control plane patches both webhook configurations: its root as caBundle, then Fail
    await wait_for(
        lambda: asyncio.to_thread(_patched, kc, discovery.security.ca.root_pem), 30, what="validators patched"
    )  # type: ignore[union-attr]
    assert discovery.validation is not None and discovery.validation.ready
    # the controller's readiness probe: a dry-run create of an invalid Gateway (no servers), now
    # that the Gateway CRD exists, is denied by /validate through the API server
    assert await discovery.validation.dry_run_denied() == ""

    bad = await _kubectl(kc, "apply", "-f", "-", input_text=INVALID_AP.format(ns=ns), check=False)
    assert bad.returncode != 0, bad.stdout
    assert 'admission webhook "validation.istio.io" denied the request' in bad.stderr, bad.stderr
    assert f"AuthorizationPolicy {ns}/bad-ports: spec.rules[0].to[0].operation.ports[0]" in bad.stderr

    bad = await _kubectl(kc, "apply", "-f", "-", input_text=INVALID_VS.format(ns=ns), check=False)
    assert bad.returncode != 0, bad.stdout
    assert f"VirtualService {ns}/bad-weights: spec.http[0].route: weights must add up to 100" in bad.stderr

    # the same object labelled with the revision is refused by the revision's own webhook too
    labelled = INVALID_AP.format(ns=ns).replace("namespace:", 'labels: {"istio.io/rev": default}, namespace:')
    bad = await _kubectl(kc, "apply", "-f", "-", input_text=labelled, check=False)
    assert 'admission webhook "rev.validation.istio.io" denied the request' in bad.stderr or (
        'admission webhook "validation.istio.io" denied the request' in bad.stderr
    ), bad.stderr

    good = await _kubectl(kc, "apply", "-f", "-", input_text=VALID_AP.format(ns=ns))
    assert "authorizationpolicy.security.istio.io/allow-sleep created" in good.stdout
    stored = await asyncio.to_thread(kubectl_json, kc, "get", "authorizationpolicies", "-n", ns)
    assert [o["metadata"]["name"] for o in stored["items"]] == ["allow-sleep"]
    assert discovery.webhook is not None and discovery.webhook.validator.denied >= 3
