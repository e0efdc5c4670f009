"""What discovery does inside the clusters it manages: root-cert ConfigMaps, the injection webhook
(patched caBundle, a pod injected through the dev cluster's admission), and, with EXTERNAL_ISTIOD,
leadership of an annotated remote."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lightkube.models import admissionregistration_v1 as adm
from lightkube.models import core_v1 as m
from lightkube.models import discovery_v1 as d
from lightkube.models.meta_v1 import LabelSelector, LabelSelectorRequirement, ObjectMeta
from lightkube.resources import admissionregistration_v1, core_v1, discovery_v1

from meshplane.discovery import app, options
from meshplane.kube import leader
from tests.support import kubeobjects
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for


@pytest.fixture
async def external(
    clusters: tuple[ThreadedCluster, ThreadedCluster], tmp_path: Path
) -> AsyncIterator[app.Discovery]:
    """Discovery with EXTERNAL_ISTIOD=true, as the guide installs it."""
    c1, _ = clusters
    kc = c1.write_kubeconfig(tmp_path / "kubeconfig")
    w = lightkube_client(c1.kubeconfig)
    await kubeobjects.ensure_namespace(w, kubeobjects.ISTIO_SYSTEM)
    await w.close()
    opts = options.build(
        {
            "kubeconfig": str(kc),
            "context": "cluster1",
            "cluster_id": "cluster1",
            "network": "network1",
            "bind_address": "127.0.0.1",
            "xds_plaintext_port": 0,
            "secure_grpc_port": 0,
            "monitoring_port": 0,
            "webhook_port": 0,
            "pod_name": "istiod-a",
        },
        {"EXTERNAL_ISTIOD": "true"},
    )
    server = app.Discovery(opts)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        w = lightkube_client(c1.kubeconfig)
        async for s in w.list(
            core_v1.Secret, namespace=kubeobjects.ISTIO_SYSTEM, labels={"istio/multiCluster": "true"}
        ):
            await w.delete(core_v1.Secret, s.metadata.name, namespace=kubeobjects.ISTIO_SYSTEM)
        await w.close()


async def root_cert(client: Any, ns: str) -> str | None:
    try:
        cm = await client.get(core_v1.ConfigMap, "istio-ca-root-cert", namespace=ns)
    except Exception:
        return None
    return (cm.data or {}).get("root-cert.pem")


def injector_webhook(name: str) -> admissionregistration_v1.MutatingWebhookConfiguration:
    return admissionregistration_v1.MutatingWebhookConfiguration(
        metadata=ObjectMeta(name=name, labels={"istio.io/rev": "default", "app": "sidecar-injector"}),
        webhooks=[
            adm.MutatingWebhook(
                name="namespace.sidecar-injector.istio.io",
                admissionReviewVersions=["v1"],
                sideEffects="None",
                failurePolicy="Fail",
                clientConfig=adm.WebhookClientConfig(
                    service=adm.ServiceReference(
                        name="istiod", namespace=kubeobjects.ISTIO_SYSTEM, port=443, path="/inject"
                    ),
                    caBundle="",
                ),
                rules=[
                    adm.RuleWithOperations(
                        operations=["CREATE"], apiGroups=[""], apiVersions=["v1"], resources=["pods"]
                    )
                ],
                namespaceSelector=LabelSelector(
                    matchExpressions=[
                        LabelSelectorRequirement(key="istio-injection", operator="In", values=["enabled"])
                    ]
                ),
            )
        ],
    )


async def test_primary_root_cert_webhook_patch_and_injection(
    clusters: tuple[ThreadedCluster, ThreadedCluster], external: app.Discovery
) -> None:
    c1, _ = clusters
    w = lightkube_client(c1.kubeconfig)
    root = external.security.ca.root_pem if external.security else ""
    # the namespace controller (leading cluster1) writes the root cert into new namespaces
    ns = unique("sample")
    await w.create(core_v1.Namespace(metadata=ObjectMeta(name=ns, labels={"istio-injection": "enabled"})))
    await wait_for(lambda: _eq(root_cert(w, ns), root), 5, what="istio-ca-root-cert in a new namespace")
    await w.delete(core_v1.ConfigMap, "istio-ca-root-cert", namespace=ns)
    await wait_for(lambda: _eq(root_cert(w, ns), root), 3, what="recreated within 2 s")

    # the webhook patcher fills caBundle; the selectorless istiod Service routes to our 15017
    await w.create(
        core_v1.Service(
            metadata=ObjectMeta(name="istiod", namespace=kubeobjects.ISTIO_SYSTEM),
            spec=m.ServiceSpec(ports=[m.ServicePort(name="https-webhook", port=443, targetPort=15017)]),
        )
    )
    await w.create(
        discovery_v1.EndpointSlice(
            addressType="IPv4",
            metadata=ObjectMeta(
                name="istiod",
                namespace=kubeobjects.ISTIO_SYSTEM,
                labels={"kubernetes.io/service-name": "istiod"},
            ),
            ports=[d.EndpointPort(name="https-webhook", port=external.ports.webhook)],
            endpoints=[d.Endpoint(addresses=["127.0.0.1"])],
        )
    )
    name = unique("istio-sidecar-injector")
    await w.create(injector_webhook(name))

    async def patched() -> bool:
        mwc = await w.get(admissionregistration_v1.MutatingWebhookConfiguration, name)
        bundle = mwc.webhooks[0].clientConfig.caBundle or ""
        return bool(bundle) and base64.b64decode(bundle).decode() == root

    await wait_for(patched, 10, what="caBundle patched")
    pod = await w.create(
        core_v1.Pod(
            metadata=ObjectMeta(name="app", namespace=ns, labels={"app": "x"}),
            spec=m.PodSpec(containers=[m.Container(name="app", image="docker.io/curlimages/curl:8.11.1")]),
        )
    )
    containers = {c.name: c for c in pod.spec.containers}
    assert "istio-proxy" in containers
    env = {e.name: e.value for e in containers["istio-proxy"].env or []}
    assert env["ISTIO_META_CLUSTER_ID"] == "cluster1" and env["ISTIO_META_NETWORK"] == "network1"
    assert "sidecar.istio.io/status" in (pod.metadata.annotations or {})
    await w.delete(admissionregistration_v1.MutatingWebhookConfiguration, name)
    await w.delete(discovery_v1.EndpointSlice, "istiod", namespace=kubeobjects.ISTIO_SYSTEM)
    await w.delete(core_v1.Service, "istiod", namespace=kubeobjects.ISTIO_SYSTEM)
    await w.close()


async def test_external_istiod_leads_only_annotated_remotes(
    clusters: tuple[ThreadedCluster, ThreadedCluster], external: app.Discovery
) -> None:
    c1, c2 = clusters
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    root = external.security.ca.root_pem if external.security else ""
    await kubeobjects.ensure_namespace(w2, kubeobjects.ISTIO_SYSTEM)
    ns2 = unique("remote")
    await w2.create(core_v1.Namespace(metadata=ObjectMeta(name=ns2)))
    # not annotated: cluster2 is only read
    await w1.create(kubeobjects.remote_secret(c2.kubeconfig))
    await wait_for(
        lambda: any(s["id"] == "cluster2" and s["syncStatus"] == "synced" for s in external._clusterz())
    )
    assert external.managed is not None
    await wait_for(lambda: "cluster2" in external.managed.decisions, what="lead decision")  # type: ignore[union-attr]
    assert external.managed.decisions["cluster2"] is False
    assert await root_cert(w2, ns2) is None
    assert "cluster2" not in (external.managed.leaders if external.managed else {})

    # annotate and re-attach (Istio checks the annotation when the cluster is added)
    await w2.patch(
        core_v1.Namespace,
        kubeobjects.ISTIO_SYSTEM,
        {"metadata": {"annotations": {"topology.istio.io/controlPlaneClusters": "cluster1"}}},
    )
    await w1.delete(core_v1.Secret, "istio-remote-secret-cluster2", namespace=kubeobjects.ISTIO_SYSTEM)
    await wait_for(lambda: all(s["id"] != "cluster2" for s in external._clusterz()))
    await w1.create(kubeobjects.remote_secret(c2.kubeconfig))
    await wait_for(lambda: _eq(root_cert(w2, ns2), root), 10, what="root cert written in cluster2")
    lock = await w2.get(
        core_v1.ConfigMap, "istio-namespace-controller-election", namespace=kubeobjects.ISTIO_SYSTEM
    )
    record = leader.Record.parse((lock.metadata.annotations or {}).get(leader.ANNOTATION))
    assert record is not None and record.holder_identity == "istiod-a" and record.holder_key == "^default"
    await w2.patch(
        core_v1.Namespace,
        kubeobjects.ISTIO_SYSTEM,
        {"metadata": {"annotations": {"topology.istio.io/controlPlaneClusters": None}}},
    )
    await w1.close()
    await w2.close()


async def _eq(value: Any, expected: str) -> bool:
    return (await value) == expected


async def test_two_replicas_one_leader_per_remote_and_handover(
    clusters: tuple[ThreadedCluster, ThreadedCluster], external: app.Discovery, tmp_path: Path
) -> None:
    c1, c2 = clusters
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    await kubeobjects.ensure_namespace(w2, kubeobjects.ISTIO_SYSTEM)
    await w2.patch(
        core_v1.Namespace,
        kubeobjects.ISTIO_SYSTEM,
        {"metadata": {"annotations": {"topology.istio.io/controlPlaneClusters": "cluster1"}}},
    )
    second = app.Discovery(
        options.build(
            {
                "kubeconfig": str(c1.write_kubeconfig(tmp_path / "kc-b")),
                "context": "cluster1",
                "cluster_id": "cluster1",
                "bind_address": "127.0.0.1",
                "xds_plaintext_port": 0,
                "secure_grpc_port": 0,
                "monitoring_port": 0,
                "webhook_port": 0,
                "pod_name": "istiod-b",
            },
            {"EXTERNAL_ISTIOD": "true"},
        )
    )
    await second.start()
    try:
        await w1.create(kubeobjects.remote_secret(c2.kubeconfig))

        def leading() -> list[str]:
            out = []
            for d in (external, second):
                election = d.managed.leaders.get("cluster2") if d.managed else None  # type: ignore[call-overload]
                if election is not None and election.leading:
                    out.append(d.opts.pod_name)
            return out

        await wait_for(lambda: len(leading()) == 1, 15, what="one leader for cluster2")
        first = leading()[0]
        lock = await w2.get(
            core_v1.ConfigMap, "istio-namespace-controller-election", namespace=kubeobjects.ISTIO_SYSTEM
        )
        record = leader.Record.parse((lock.metadata.annotations or {}).get(leader.ANNOTATION))
        assert record is not None and record.holder_identity == first
        # the leader goes away: the other replica takes over within the lease duration (30 s)
        await (external if first == "istiod-a" else second).stop()
        await wait_for(
            lambda: leading() == [("istiod-b" if first == "istiod-a" else "istiod-a")], 30, what="handover"
        )
    finally:
        await second.stop()
        await w2.patch(
            core_v1.Namespace,
            kubeobjects.ISTIO_SYSTEM,
            {"metadata": {"annotations": {"topology.istio.io/controlPlaneClusters": None}}},
        )
        await w1.close()
        await w2.close()
