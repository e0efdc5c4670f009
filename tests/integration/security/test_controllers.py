"""Namespace controller and webhook patcher against a real dev cluster."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import lightkube
import pytest
import pytest_asyncio
from lightkube.models.admissionregistration_v1 import (
    MutatingWebhook,
    RuleWithOperations,
    ServiceReference,
    WebhookClientConfig,
)
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.admissionregistration_v1 import MutatingWebhookConfiguration
from lightkube.resources.core_v1 import ConfigMap, Namespace
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

from meshplane.model.ids import ClusterId
from meshplane.runtime import tasks
from meshplane.security import ca, nscontroller, webhookpatch
from tests.support.loopcluster import Cluster, unique
from tests.support.wait import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT_A = ca.self_signed_root().root_pem
ROOT_B = ca.self_signed_root().root_pem


async def _cm(client: lightkube.AsyncClient, ns: str) -> ConfigMap | None:
    try:
        return await client.get(ConfigMap, nscontroller.CONFIGMAP_NAME, namespace=ns)
    except lightkube.ApiError as e:
        if e.status.code == 404:
            return None
        raise


async def _has_root(client: lightkube.AsyncClient, ns: str, root: str) -> bool:
    cm = await _cm(client, ns)
    return (
        cm is not None
        and dict(cm.data or {}) == {"root-cert.pem": root}
        and (cm.metadata.labels or {}).get("istio.io/config") == "true"
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def controller(clusters: tuple[Cluster, Cluster]) -> AsyncIterator[nscontroller.NamespaceController]:
    c1, _ = clusters
    ctl = nscontroller.NamespaceController(c1.admin, ClusterId("cluster1"), ROOT_A)
    task = tasks.guarded(ctl.run(), "nscontroller-test")
    try:
        yield ctl
    finally:
        await ctl.stop()
        await tasks.cancel(task)


async def test_every_namespace_but_excluded_gets_the_configmap(
    clusters: tuple[Cluster, Cluster], controller: nscontroller.NamespaceController
) -> None:
    c1, _ = clusters
    excluded = ("kube-public", "kube-node-lease", "local-path-storage")
    for ns in excluded:
        await c1.namespace(ns)
    for ns in ("default", "kube-system", "istio-system", "sample"):
        await wait_for(lambda ns=ns: _has_root(c1.admin, ns, controller.ca_bundle), 10, message=f"cm in {ns}")
    # a namespace created after the excluded ones is handled after them (one FIFO queue)
    last = unique("after")
    await c1.namespace(last)
    await wait_for(lambda: _has_root(c1.admin, last, controller.ca_bundle), 5, message="cm in last namespace")
    for ns in excluded:
        assert await c1.admin.get(Namespace, ns) is not None
        assert await _cm(c1.admin, ns) is None, ns


async def test_new_namespace_deleted_and_edited_configmap(
    clusters: tuple[Cluster, Cluster], controller: nscontroller.NamespaceController
) -> None:
    c1, _ = clusters
    ns = unique("app")
    await c1.namespace(ns)
    await wait_for(lambda: _has_root(c1.admin, ns, controller.ca_bundle), 2, message="cm in new namespace")
    await c1.admin.delete(ConfigMap, nscontroller.CONFIGMAP_NAME, namespace=ns)
    await wait_for(lambda: _has_root(c1.admin, ns, controller.ca_bundle), 2, message="cm back after delete")
    await c1.admin.patch(
        ConfigMap,
        nscontroller.CONFIGMAP_NAME,
        {"data": {"root-cert.pem": "tampered", "extra": "x"}},
        namespace=ns,
    )
    await wait_for(lambda: _has_root(c1.admin, ns, controller.ca_bundle), 2, message="cm restored after edit")
    await c1.admin.patch(
        ConfigMap,
        nscontroller.CONFIGMAP_NAME,
        {"metadata": {"labels": {"istio.io/config": None}}},
        namespace=ns,
    )
    await wait_for(lambda: _has_root(c1.admin, ns, controller.ca_bundle), 2, message="label restored")


async def test_root_change_updates_every_configmap(
    clusters: tuple[Cluster, Cluster], controller: nscontroller.NamespaceController
) -> None:
    c1, _ = clusters
    ns = unique("rot")
    await c1.namespace(ns)
    await wait_for(lambda: _has_root(c1.admin, ns, ROOT_A), 5, message="cm with root A")
    controller.set_ca_bundle(ROOT_B)
    try:
        for name in (ns, "default", "kube-system"):
            await wait_for(
                lambda name=name: _has_root(c1.admin, name, ROOT_B), 5, message=f"root B in {name}"
            )
    finally:
        controller.set_ca_bundle(ROOT_A)
    await wait_for(lambda: _has_root(c1.admin, ns, ROOT_A), 5, message="back to root A")


async def test_stopped_controller_no_longer_writes(clusters: tuple[Cluster, Cluster]) -> None:
    _, c2 = clusters
    ctl = nscontroller.NamespaceController(c2.admin, ClusterId("cluster2"), ROOT_B)
    task = tasks.guarded(ctl.run(), "nscontroller-c2")
    ns = unique("led")
    await c2.namespace(ns)
    await wait_for(lambda: _has_root(c2.admin, ns, ROOT_B), 5, message="remote cm")
    await ctl.stop()
    assert task.done() and not any(not t.done() for t in ctl._group.tasks)


def _mwc(name: str, rev: str, bundle: str | None = None) -> MutatingWebhookConfiguration:
    def hook(hname: str) -> MutatingWebhook:
        return MutatingWebhook(
            name=hname,
            admissionReviewVersions=["v1"],
            sideEffects="None",
            failurePolicy="Ignore",
            clientConfig=WebhookClientConfig(
                service=ServiceReference(name="istiod", namespace="istio-system", path="/inject", port=443),
                caBundle=bundle,
            ),
            rules=[
                RuleWithOperations(
                    operations=["CREATE"], apiGroups=[""], apiVersions=["v1"], resources=["pods"]
                )
            ],
            # select nothing in this test cluster: the webhook is never called
            namespaceSelector=LabelSelector(matchLabels={"meshplane-test": "never"}),
        )

    return MutatingWebhookConfiguration(
        metadata=ObjectMeta(name=name, labels={"istio.io/rev": rev, "app": "sidecar-injector"}),
        webhooks=[
            hook("rev.namespace.sidecar-injector.istio.io"),
            hook("rev.object.sidecar-injector.istio.io"),
            hook("namespace.sidecar-injector.istio.io"),
            hook("object.sidecar-injector.istio.io"),
            hook("validation.example.io"),
        ],
    )


async def _bundles(client: lightkube.AsyncClient, name: str) -> dict[str, str | None]:
    mwc = await client.get(MutatingWebhookConfiguration, name)
    return {w.name: w.clientConfig.caBundle for w in mwc.webhooks}


async def test_webhook_cabundle_patched_and_repatched(clusters: tuple[Cluster, Cluster]) -> None:
    _, c2 = clusters
    ours, theirs = unique("istio-sidecar-injector"), unique("istio-sidecar-injector-canary")
    await c2.admin.create(_mwc(ours, "default"))
    await c2.admin.create(_mwc(theirs, "canary"))
    patcher = webhookpatch.WebhookPatcher(c2.admin, ClusterId("cluster2"), "default", ROOT_A)
    task = tasks.guarded(patcher.run(), "webhookpatch-test")
    enc_a = base64.b64encode(ROOT_A.encode()).decode()

    async def patched(enc: str) -> bool:
        b = await _bundles(c2.admin, ours)
        return (
            all(v == enc for k, v in b.items() if k.endswith("sidecar-injector.istio.io"))
            and not b["validation.example.io"]
        )

    try:
        await wait_for(lambda: patched(enc_a), 5, message="caBundle patched")
        assert not any((await _bundles(c2.admin, theirs)).values()), "another revision's webhook is not ours"
        # someone resets it: patched again
        mwc = await c2.admin.get(MutatingWebhookConfiguration, ours)
        mwc.webhooks[1].clientConfig.caBundle = base64.b64encode(b"stale").decode()
        await c2.admin.replace(mwc)
        await wait_for(lambda: patched(enc_a), 5, message="caBundle re-patched after edit")
        # the CA changes
        patcher.set_ca_bundle(ROOT_B)
        await wait_for(lambda: patched(base64.b64encode(ROOT_B.encode()).decode()), 5, message="new root")
        # a webhook configuration created later is patched too
        late = unique("istio-sidecar-injector-late")
        await c2.admin.create(_mwc(late, "default"))
        enc_b = base64.b64encode(ROOT_B.encode()).decode()

        async def late_patched() -> bool:
            return (await _bundles(c2.admin, late))["object.sidecar-injector.istio.io"] == enc_b

        await wait_for(late_patched, 5, message="late webhook patched")
    finally:
        await patcher.stop()
        await tasks.cancel(task)


async def test_webhook_patch_retries_fast_then_succeeds_once_allowed(
    clusters: tuple[Cluster, Cluster],
) -> None:
    """Without update rights every patch fails: 5 quick retries (100 ms); once RBAC allows it, the
    next event patches."""
    _, c2 = clusters
    sa, role = unique("patcher"), unique("patcher-role")
    await c2.service_account("istio-system", sa)
    read = PolicyRule(
        apiGroups=["admissionregistration.k8s.io"],
        resources=["mutatingwebhookconfigurations"],
        verbs=["get", "list", "watch"],
    )
    await c2.admin.create(ClusterRole(metadata=ObjectMeta(name=role), rules=[read]))
    await c2.admin.create(
        ClusterRoleBinding(
            metadata=ObjectMeta(name=role),
            roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="ClusterRole", name=role),
            subjects=[Subject(kind="ServiceAccount", name=sa, namespace="istio-system")],
        )
    )
    client = await c2.client_as("istio-system", sa)
    name = unique("istio-sidecar-injector-rbac")
    await c2.admin.create(_mwc(name, "rbac"))
    patcher = webhookpatch.WebhookPatcher(client, ClusterId("cluster2"), "rbac", ROOT_A)
    task = tasks.guarded(patcher.run(), "webhookpatch-rbac")
    enc_a = base64.b64encode(ROOT_A.encode()).decode()
    try:
        started = asyncio.get_running_loop().time()
        await wait_for(
            lambda: patcher._queue.failures(name) >= webhookpatch.FAST_RETRIES + 1, 3, message="retries"
        )
        assert asyncio.get_running_loop().time() - started < 2.5, "the first retries are 100 ms apart"
        assert patcher.patches == 0
        write = PolicyRule(
            apiGroups=["admissionregistration.k8s.io"],
            resources=["mutatingwebhookconfigurations"],
            verbs=["update"],
        )
        await c2.admin.patch(ClusterRole, role, {"rules": [read.to_dict(), write.to_dict()]})
        await c2.admin.patch(MutatingWebhookConfiguration, name, {"metadata": {"labels": {"touch": "1"}}})

        async def patched() -> bool:
            b = await _bundles(c2.admin, name)
            return b["rev.namespace.sidecar-injector.istio.io"] == enc_a

        await wait_for(patched, 5, message="patched once allowed")
        assert patcher._queue.failures(name) == 0
    finally:
        await patcher.stop()
        await tasks.cancel(task)
        await client.close()
