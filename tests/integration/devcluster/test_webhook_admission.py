"""Admission webhooks served by the test itself (HTTPS on 127.0.0.1, its own CA), called by the
dev cluster for Pods created through lightkube and kubectl."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lightkube import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.admissionregistration_v1 import (
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
)
from lightkube.resources.core_v1 import Namespace, Pod, Service

from tests.support import clusters, webhooks
from tests.support.clusters import kubectl

EndpointSlice = create_namespaced_resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices")
PATCH = [{"op": "add", "path": "/metadata/labels/injected", "value": "yes"}]


@pytest.fixture(scope="module")
def certs() -> webhooks.Certs:
    return webhooks.make_certs(["hook.default.svc", "localhost"])


@pytest_asyncio.fixture
async def server(certs: webhooks.Certs) -> AsyncIterator[webhooks.WebhookServer]:
    srv = webhooks.WebhookServer(certs, lambda r: webhooks.allow(r, PATCH))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest_asyncio.fixture
async def space(client: Any) -> AsyncIterator[str]:
    """A fresh namespace labelled for this test's webhooks; the webhook configurations made by the
    test are removed afterwards (they are cluster-wide)."""
    name = clusters.unique("wh")
    await client.create(Namespace(metadata=ObjectMeta(name=name, labels={"webhook-test": name})))
    try:
        yield name
    finally:
        for kind in (MutatingWebhookConfiguration, ValidatingWebhookConfiguration):
            async for cfg in client.list(kind, labels={"webhook-test": name}):
                await client.delete(kind, cfg.metadata.name)


def hook(name: str, space: str, client_config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    h: dict[str, Any] = {
        "name": name,
        "clientConfig": client_config,
        "rules": [
            {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
        ],
        "namespaceSelector": {"matchLabels": {"webhook-test": space}},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    h.update(extra)
    return h


async def configure(client: Any, space: str, *hooks: dict[str, Any], validating: bool = False) -> None:
    kind = ValidatingWebhookConfiguration if validating else MutatingWebhookConfiguration
    obj = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind.__name__,
        "metadata": {"name": f"{space}-{'v' if validating else 'm'}", "labels": {"webhook-test": space}},
        "webhooks": list(hooks),
    }
    await client.create(kind.from_dict(obj))  # type: ignore[attr-defined]


def pod(space: str, name: str = "p", labels: dict[str, str] | None = None) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace=space, labels=labels or {}),
        spec=PodSpec(containers=[Container(name="c", image="app:1")]),
    )


async def stored(client: Any, space: str, name: str) -> Any:
    try:
        return await client.get(Pod, name, namespace=space)
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise


async def test_mutating_webhook_by_url(
    client: Any, space: str, server: webhooks.WebhookServer, certs: webhooks.Certs
) -> None:
    url = f"https://127.0.0.1:{server.port}/mutate"
    await configure(client, space, hook("url.example.com", space, {"url": url, "caBundle": certs.ca_bundle}))
    created = await client.create(pod(space))
    assert created.metadata.labels["injected"] == "yes"
    assert (await stored(client, space, "p")).metadata.labels["injected"] == "yes"
    assert server.paths == ["/mutate?timeout=10s"]
    req = server.reviews[0]["request"]
    assert req["operation"] == "CREATE" and req["namespace"] == space and req["name"] == "p"
    assert req["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert req["userInfo"]["username"] == "kubernetes-admin"
    assert req["object"]["spec"]["serviceAccountName"] == "default"  # built-in admission ran first
    # another namespace (namespaceSelector) and an objectSelector that does not match: not called
    await client.create(pod("default", clusters.unique("untouched")))
    assert len(server.reviews) == 1


async def test_webhook_through_selectorless_service(client: Any, space: str, kubeconfig_path: Path) -> None:
    # TLS checks NAME.NAMESPACE.svc, so that is the name in the webhook's certificate
    svc_certs = webhooks.make_certs([f"hook.{space}.svc"], ips=[])
    srv = webhooks.WebhookServer(svc_certs, lambda r: webhooks.allow(r, PATCH))
    port = await srv.start()
    try:
        await client.create(
            Service.from_dict(
                {  # type: ignore[attr-defined]
                    "metadata": {"name": "hook", "namespace": space},
                    "spec": {"ports": [{"name": "https-webhook", "port": 443, "targetPort": 15017}]},
                }
            )
        )
        await client.create(
            EndpointSlice.from_dict(
                {  # type: ignore[attr-defined]
                    "metadata": {
                        "name": "hook-1",
                        "namespace": space,
                        "labels": {"kubernetes.io/service-name": "hook"},
                    },
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
                    "ports": [{"name": "https-webhook", "port": port, "protocol": "TCP"}],
                }
            )
        )
        cc = {
            "service": {"name": "hook", "namespace": space, "path": "/inject/cluster/c2"},
            "caBundle": svc_certs.ca_bundle,
        }
        await configure(
            client,
            space,
            hook("svc.example.com", space, cc, objectSelector={"matchLabels": {"inject": "true"}}),
        )
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "k", "namespace": space, "labels": {"inject": "true"}},
            "spec": {"containers": [{"name": "c", "image": "app:1"}]},
        }
        # kubectl runs in a thread: the webhook is served by this test's event loop
        await asyncio.to_thread(kubectl, kubeconfig_path, "apply", "-f", "-", input_text=json.dumps(manifest))
        got = json.loads(kubectl(kubeconfig_path, "get", "pod", "k", "-n", space, "-o", "json").stdout)
        assert got["metadata"]["labels"]["injected"] == "yes"
        assert srv.paths == ["/inject/cluster/c2?timeout=10s"]
        # objectSelector not matching: created untouched, webhook not called
        plain = await client.create(pod(space, "plain"))
        assert "injected" not in (plain.metadata.labels or {})
        assert len(srv.reviews) == 1
    finally:
        await srv.stop()


async def test_external_name_service_is_refused(client: Any, space: str, certs: webhooks.Certs) -> None:
    await client.create(
        Service.from_dict(
            {  # type: ignore[attr-defined]
                "metadata": {"name": "ext", "namespace": space},
                "spec": {"type": "ExternalName", "externalName": "istiod.example.com"},
            }
        )
    )
    cc = {"service": {"name": "ext", "namespace": space, "path": "/inject"}, "caBundle": certs.ca_bundle}
    await configure(client, space, hook("ext.example.com", space, cc))
    with pytest.raises(ApiError) as e:
        await client.create(pod(space))
    assert e.value.status.message == (
        'Internal error occurred: failed calling webhook "ext.example.com": failed to call webhook: '
        f'Post "https://ext.{space}.svc:443/inject?timeout=10s": unsupported service type "ExternalName"'
    )
    assert await stored(client, space, "p") is None


async def test_failure_policy(client: Any, space: str, certs: webhooks.Certs) -> None:
    srv = webhooks.WebhookServer(certs, webhooks.allow)
    port = await srv.start()
    await srv.stop()  # nothing listens there now
    url = f"https://127.0.0.1:{port}/down"
    await configure(client, space, hook("fail.example.com", space, {"url": url, "caBundle": certs.ca_bundle}))
    with pytest.raises(ApiError) as e:
        await client.create(pod(space))
    assert e.value.status.code == 500
    assert e.value.status.message == (
        'Internal error occurred: failed calling webhook "fail.example.com": failed to call webhook: '
        f'Post "{url}?timeout=10s": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )
    assert await stored(client, space, "p") is None
    await client.delete(MutatingWebhookConfiguration, f"{space}-m")
    await configure(
        client,
        space,
        hook("ignore.example.com", space, {"url": url, "caBundle": certs.ca_bundle}, failurePolicy="Ignore"),
    )
    created = await client.create(pod(space))
    assert "injected" not in (created.metadata.labels or {})


async def test_timeout_and_wrong_ca(
    client: Any, space: str, certs: webhooks.Certs, server: webhooks.WebhookServer
) -> None:
    release = asyncio.Event()

    async def slow(review: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return webhooks.allow(review)

    srv = webhooks.WebhookServer(certs, slow)
    await srv.start()
    try:
        url = f"https://127.0.0.1:{srv.port}/slow"
        await configure(
            client,
            space,
            hook("slow.example.com", space, {"url": url, "caBundle": certs.ca_bundle}, timeoutSeconds=1),
        )
        with pytest.raises(ApiError) as e:
            await client.create(pod(space))
        assert e.value.status.message.endswith(f'Post "{url}?timeout=1s": context deadline exceeded')
        assert await stored(client, space, "p") is None
    finally:
        release.set()
        await srv.stop()
    await client.delete(MutatingWebhookConfiguration, f"{space}-m")
    wrong = webhooks.make_certs(["localhost"])
    url = f"https://127.0.0.1:{server.port}/mutate"
    await configure(client, space, hook("ca.example.com", space, {"url": url, "caBundle": wrong.ca_bundle}))
    with pytest.raises(ApiError) as e:
        await client.create(pod(space))
    assert e.value.status.message.endswith(
        "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    )
    assert server.reviews == [] and await stored(client, space, "p") is None


async def test_validating_webhook_denies(
    client: Any, space: str, certs: webhooks.Certs, kubeconfig_path: Path
) -> None:
    def judge(review: dict[str, Any]) -> dict[str, Any]:
        labels = review["request"]["object"]["metadata"].get("labels") or {}
        if labels.get("privileged") == "true":
            return webhooks.deny(review, "privileged pods are not allowed here", 403)
        return webhooks.allow(review)

    srv = webhooks.WebhookServer(certs, judge)
    await srv.start()
    try:
        url = f"https://127.0.0.1:{srv.port}/validate"
        await configure(
            client,
            space,
            hook("deny.example.com", space, {"url": url, "caBundle": certs.ca_bundle}),
            validating=True,
        )
        with pytest.raises(ApiError) as e:
            await client.create(pod(space, "bad", {"privileged": "true"}))
        assert e.value.status.code == 403
        assert e.value.status.message == (
            'admission webhook "deny.example.com" denied the request: privileged pods are not allowed here'
        )
        assert await stored(client, space, "bad") is None
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "bad2", "namespace": space, "labels": {"privileged": "true"}},
            "spec": {"containers": [{"name": "c", "image": "app:1"}]},
        }
        out = await asyncio.to_thread(
            kubectl, kubeconfig_path, "create", "-f", "-", input_text=json.dumps(manifest), check=False
        )
        assert out.returncode == 1
        assert (
            'admission webhook "deny.example.com" denied the request: privileged pods are not allowed here'
            in out.stderr
        )
        assert await stored(client, space, "bad2") is None
        assert (await client.create(pod(space, "good"))).metadata.name == "good"
    finally:
        await srv.stop()
