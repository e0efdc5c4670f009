"""A CA change reaches every cluster (issue 14, defect 2): rotating `cacerts` in the primary
republishes the root-cert ConfigMaps and webhook caBundles of both managed clusters (new root plus
the old one during the transition, then the new one alone), workload CSRs get chains to the new
root, 15012 presents a certificate from the new CA; a malformed `cacerts` is refused with the
reason, counted, and nothing changes."""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import lightkube
import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import admissionregistration_v1, core_v1

from meshplane.agent import csr
from meshplane.discovery import app, options
from meshplane.security import ca
from tests.integration.discovery.test_discovery_ca import client_for
from tests.integration.discovery.test_discovery_injection import _pod, _route_istiod
from tests.integration.discovery.test_discovery_managed import injector_webhook, root_cert
from tests.support import kubeobjects, secpki
from tests.support.clusters import ThreadedCluster, lightkube_client, unique
from tests.support.wait import wait_for

NS = kubeobjects.ISTIO_SYSTEM
TRANSITION = 6.0  # seconds the replaced root stays trusted in this test


def _cacerts(data: dict[str, bytes]) -> core_v1.Secret:
    return core_v1.Secret(
        metadata=ObjectMeta(name="cacerts", namespace=NS),
        data={k: base64.b64encode(v).decode() for k, v in data.items()},
    )


@pytest.fixture
async def rotating(
    clusters: tuple[ThreadedCluster, ThreadedCluster], tmp_path: Path
) -> AsyncIterator[tuple[app.Discovery, ca.KeyCertBundle]]:
    """Discovery on a plugged-in CA (root A), managing cluster1 and, through EXTERNAL_ISTIOD and the
    remote's annotation, cluster2."""
    c1, c2 = clusters
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    for w in (w1, w2):
        await kubeobjects.ensure_namespace(w, NS)
    await w2.patch(
        core_v1.Namespace, NS, {"metadata": {"annotations": {"topology.istio.io/controlPlaneClusters": "*"}}}
    )
    data, root_a = secpki.intermediate_cacerts()
    await w1.create(_cacerts(data))
    opts = options.build(
        {
            "kubeconfig": str(c1.write_kubeconfig(tmp_path / "kubeconfig")),
            "context": "cluster1",
            "cluster_id": "cluster1",
            "network": "network1",
            "bind_address": "127.0.0.1",
            "xds_plaintext_port": 0,
            "secure_grpc_port": 0,
            "monitoring_port": 0,
            "webhook_port": 0,
            "pod_name": "istiod-rot",
            "root_cert_transition": TRANSITION,
        },
        {"EXTERNAL_ISTIOD": "true"},
    )
    server = app.Discovery(opts)
    await server.start()
    try:
        yield server, root_a
    finally:
        await server.stop()
        for s in ("cacerts", "istio-remote-secret-cluster2"):
            with contextlib.suppress(lightkube.ApiError):  # a failed test may not have made it
                await w1.delete(core_v1.Secret, s, namespace=NS)
        await w1.close()
        await w2.close()


async def _bundle_of(client: Any, name: str) -> str:
    mwc = await client.get(admissionregistration_v1.MutatingWebhookConfiguration, name)
    return base64.b64decode(mwc.webhooks[0].clientConfig.caBundle or "").decode()


async def _holds(get: Any, want: str) -> bool:
    return bool(await get() == want)


async def test_cacerts_rotation_reaches_both_clusters_and_bad_material_changes_nothing(
    clusters: tuple[ThreadedCluster, ThreadedCluster],
    rotating: tuple[app.Discovery, ca.KeyCertBundle],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    discovery, root_a = rotating
    c1, c2 = clusters
    w1, w2 = lightkube_client(c1.kubeconfig), lightkube_client(c2.kubeconfig)
    assert discovery.security is not None
    assert discovery.security.ca.root_pem == root_a.root_pem
    ns = unique("rot")
    for w in (w1, w2):
        await w.create(core_v1.Namespace(metadata=ObjectMeta(name=ns)))
        await w.create(core_v1.ServiceAccount(metadata=ObjectMeta(name="sleep", namespace=ns)))
    hook = unique("istio-sidecar-injector")
    for w in (w1, w2):
        await w.create(injector_webhook(hook))
    await w1.create(kubeobjects.remote_secret(c2.kubeconfig))
    places = [
        ("cluster1 ConfigMap", lambda: root_cert(w1, ns)),
        ("cluster2 ConfigMap", lambda: root_cert(w2, ns)),
        ("cluster1 caBundle", lambda: _bundle_of(w1, hook)),
        ("cluster2 caBundle", lambda: _bundle_of(w2, hook)),
    ]

    async def everywhere(want: str, what: str, within: float = 15) -> None:
        for where, get in places:
            await wait_for(lambda g=get: _holds(g, want), within, what=f"{where} holds {what}")

    await everywhere(root_a.root_pem, "root A")

    # a malformed replacement: the key of another CA. Refused with the reason, counted; nothing moves
    bad, _ = secpki.intermediate_cacerts()
    good_b, root_b = secpki.intermediate_cacerts()
    bad = {**good_b, ca.CACERTS_KEY: bad[ca.CACERTS_KEY]}
    caplog.set_level(logging.INFO, logger="meshplane.security")
    await w1.replace(_cacerts(bad))

    def refusals() -> float:
        sample = discovery.metrics.registry.get_sample_value(
            "meshplane_ca_reload_errors_total", {"secret": "cacerts"}
        )
        return sample or 0.0

    await wait_for(lambda: refusals() >= 1, 10, what="the bad cacerts refused and counted")
    refused = [r.getMessage() for r in caplog.records if "CA material refused" in r.getMessage()]
    assert refused and "does not match" in refused[-1] and "secret=cacerts" in refused[-1]
    assert discovery.security.ca.root_pem == root_a.root_pem
    for where, get in places:
        assert await get() == root_a.root_pem, f"{where} changed after a refused cacerts"

    # the good rotation: new root B, old root A still trusted during the transition
    await w1.replace(_cacerts(good_b))
    combined = root_b.root_pem + root_a.root_pem
    await everywhere(combined, "root B then root A")
    assert discovery.ca_rotator is not None and discovery.ca_rotator.last_error == ""
    # a workload CSR now gets a chain to root B, over a 15012 connection that trusts only root B
    token = c2.run(lambda: c2.cluster.security.issue_token(ns, "sleep", ["istio-ca"]))
    await wait_for(lambda: "cluster2" in discovery._remote_ids(), what="cluster2 attached")
    request = csr.generate(csr.spiffe_id("cluster.local", ns, "sleep"), csr.KeyAlgorithm.ECDSA).csr_pem
    chain = await client_for(discovery, tmp_path, token, "cluster2").create(request, 3600)
    assert chain[-1] == root_b.root_pem

    # transition over: root A is dropped everywhere
    await everywhere(root_b.root_pem, "root B alone", within=TRANSITION + 15)
    # cluster1's API server, trusting only root B, still reaches the webhook on 15017: injected
    assert discovery.ports.webhook is not None
    await _route_istiod(w1, discovery.ports.webhook)
    enabled = unique("inj")
    await w1.create(
        core_v1.Namespace(metadata=ObjectMeta(name=enabled, labels={"istio-injection": "enabled"}))
    )
    pod = await w1.create(_pod(enabled))
    assert "istio-proxy" in [c.name for c in pod.spec.containers]
    for w in (w1, w2):
        await w.delete(admissionregistration_v1.MutatingWebhookConfiguration, hook)
    await w1.close()
    await w2.close()
