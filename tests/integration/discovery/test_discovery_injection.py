"""Injection of a remote cluster's pods is decided by that cluster's API server (the webhook
configuration's selectors against its own namespaces) and the pod, never by the labels of a
same-named namespace in the primary (issue 14, defect 1)."""

from __future__ import annotations

import base64
from typing import Any

from lightkube.models import admissionregistration_v1 as adm
from lightkube.models import core_v1 as m
from lightkube.models import discovery_v1 as d
from lightkube.models.meta_v1 import LabelSelector, LabelSelectorRequirement, ObjectMeta
from lightkube.resources import admissionregistration_v1, core_v1, discovery_v1

from meshplane.discovery import app
from meshplane.model import injection
from tests.support import kubeobjects
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for

REMOTE_PATH = "/inject/cluster/cluster2/net/network2"


def _selector(reqs: tuple[injection.Requirement, ...]) -> LabelSelector:
    return LabelSelector(
        matchExpressions=[
            LabelSelectorRequirement(key=r.key, operator=r.operator, values=list(r.values) or None)
            for r in reqs
        ]
    )


def remote_injector(name: str, ca_bundle: str) -> admissionregistration_v1.MutatingWebhookConfiguration:
    """The remote's istio-sidecar-injector as Istio renders it (SPEC §6 entries), path per cluster."""
    hooks = [
        adm.MutatingWebhook(
            name=e.name,
            admissionReviewVersions=["v1"],
            sideEffects="None",
            failurePolicy="Fail",
            clientConfig=adm.WebhookClientConfig(
                service=adm.ServiceReference(
                    name="istiod", namespace=kubeobjects.ISTIO_SYSTEM, port=443, path=REMOTE_PATH
                ),
                caBundle=base64.b64encode(ca_bundle.encode()).decode(),
            ),
            rules=[
                adm.RuleWithOperations(
                    operations=["CREATE"], apiGroups=[""], apiVersions=["v1"], resources=["pods"]
                )
            ],
            namespaceSelector=_selector(e.namespace_selector),
            objectSelector=_selector(e.object_selector),
        )
        for e in injection.entries()
    ]
    return admissionregistration_v1.MutatingWebhookConfiguration(
        metadata=ObjectMeta(name=name, labels={"istio.io/rev": "default"}), webhooks=hooks
    )


async def _route_istiod(client: Any, port: int) -> None:
    """The selectorless istiod Service of a remote, pointing at the discovery's webhook port."""
    await kubeobjects.ensure_namespace(client, kubeobjects.ISTIO_SYSTEM)
    await client.create(
        core_v1.Service(
            metadata=ObjectMeta(name="istiod", namespace=kubeobjects.ISTIO_SYSTEM),
            spec=m.ServiceSpec(ports=[m.ServicePort(name="https-webhook", port=443, targetPort=15017)]),
        )
    )
    await client.create(
        discovery_v1.EndpointSlice(
            addressType="IPv4",
            metadata=ObjectMeta(
                name="istiod",
                namespace=kubeobjects.ISTIO_SYSTEM,
                labels={"kubernetes.io/service-name": "istiod"},
            ),
            ports=[d.EndpointPort(name="https-webhook", port=port)],
            endpoints=[d.Endpoint(addresses=["127.0.0.1"])],
        )
    )


def _pod(ns: str, labels: dict[str, str] | None = None) -> core_v1.Pod:
    return core_v1.Pod(
        metadata=ObjectMeta(name="app", namespace=ns, labels={"app": "x", **(labels or {})}),
        spec=m.PodSpec(containers=[m.Container(name="app", image="docker.io/curlimages/curl:8.11.1")]),
    )


async def test_remote_pods_follow_their_own_clusters_namespace_labels(
    clusters: tuple[ThreadedCluster, ThreadedCluster], discovery: app.Discovery
) -> None:
    c1, c2 = clusters
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    assert discovery.security is not None and discovery.ports.webhook is not None
    # enabled in cluster2, unlabelled in cluster1
    enabled2 = unique("sample")
    await w1.create(core_v1.Namespace(metadata=ObjectMeta(name=enabled2)))
    await w2.create(
        core_v1.Namespace(metadata=ObjectMeta(name=enabled2, labels={"istio-injection": "enabled"}))
    )
    # unlabelled in cluster2 (the pod opts in itself), explicitly disabled in cluster1
    object2 = unique("byobject")
    await w1.create(
        core_v1.Namespace(metadata=ObjectMeta(name=object2, labels={"istio-injection": "disabled"}))
    )
    await w2.create(core_v1.Namespace(metadata=ObjectMeta(name=object2)))
    assert discovery.multicluster is not None
    primary_namespaces = discovery.multicluster.local_registry.namespace_informer
    await wait_for(
        lambda: primary_namespaces.get(enabled2) is not None and primary_namespaces.get(object2) is not None,
        5,
        what="the primary's namespace informer holds both namespaces",
    )
    await _route_istiod(w2, discovery.ports.webhook)
    await w2.create(remote_injector(unique("istio-sidecar-injector"), discovery.security.ca.root_pem))

    for ns, labels in ((enabled2, {}), (object2, {"sidecar.istio.io/inject": "true"})):
        pod = await w2.create(_pod(ns, labels))
        containers = {c.name: c for c in pod.spec.containers}
        assert "istio-proxy" in containers, f"cluster2 pod in {ns} was admitted without a sidecar"
        env = {e.name: e.value for e in containers["istio-proxy"].env or []}
        assert env["ISTIO_META_CLUSTER_ID"] == "cluster2" and env["ISTIO_META_NETWORK"] == "network2"

    # what cluster2's own selectors exclude never reaches the webhook: no sidecar
    plain = unique("plain")
    await w2.create(core_v1.Namespace(metadata=ObjectMeta(name=plain)))
    pod = await w2.create(_pod(plain))
    assert [c.name for c in pod.spec.containers] == ["app"]
    # and a pod opting out in an enabled namespace is admitted unchanged by the webhook's own policy
    pod = await w2.create(
        core_v1.Pod(
            metadata=ObjectMeta(
                name="optout", namespace=enabled2, annotations={"sidecar.istio.io/inject": "false"}
            ),
            spec=m.PodSpec(containers=[m.Container(name="app", image="docker.io/curlimages/curl:8.11.1")]),
        )
    )
    assert [c.name for c in pod.spec.containers] == ["app"]
    await w1.close()
    await w2.close()
