"""The RBAC audit (issue 12): `meshplane discovery` runs under exactly the roles `meshplane install`
renders, on two dev clusters that enforce RBAC for service accounts, the way the guide sets it up:
cluster1 as istiod's ServiceAccount (the in-cluster path: a bound token, no admin), cluster2 through
a remote secret holding the reader ServiceAccount's token, EXTERNAL_ISTIOD managing cluster2.

Every request either service account makes is recorded at the dev cluster's authorizer. The control
plane must come up and do its work (ready, root certs and webhook caBundles in both clusters, token
reviews in both), no request may be refused, and every request must be one kube/apicalls.py lists
for that cluster. Then a role with one verb missing: the control plane stays unready and says which
call was refused."""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import lightkube
import pytest
from lightkube.resources import admissionregistration_v1, core_v1

from meshplane.devcluster import app as devcluster_app
from meshplane.devcluster import seams
from meshplane.discovery import app, options
from meshplane.installer import apply, config, rbac, render
from meshplane.kube import apicalls
from meshplane.security import authenticate
from tests.support import kubeobjects, loopcluster
from tests.support.installenv import CLUSTER1_YAML, CLUSTER2_YAML
from tests.support.wait import wait_for

NS = kubeobjects.ISTIO_SYSTEM
APP_NS = "sample"
ISTIOD_USER = f"system:serviceaccount:{NS}:istiod"
READER_USER = f"system:serviceaccount:{NS}:{rbac.READER_SA}"
# what `meshplane install` applies that the control plane's calls depend on
KINDS = {
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "MutatingWebhookConfiguration",
    "CustomResourceDefinition",
}


@dataclass
class Recorder:
    """A seams.Authorizer in front of the cluster's own RBAC: remembers the service accounts' requests."""

    dev: devcluster_app.DevCluster
    users: frozenset[str]
    seen: list[tuple[seams.RequestAttributes, bool, str]] = field(default_factory=list)

    async def authorize(self, attrs: seams.RequestAttributes) -> tuple[bool, str]:
        allowed, reason = await self.dev.security.authorizer.authorize(attrs)
        if attrs.user.username in self.users:
            self.seen.append((attrs, allowed, reason))
        return allowed, reason


async def _cluster(name: str, data_dir: Path) -> tuple[loopcluster.Cluster, Recorder]:
    dev = devcluster_app.DevCluster(name=name, data_dir=data_dir, host="127.0.0.1", port=0)
    rec = Recorder(dev, frozenset({ISTIOD_USER, READER_USER}))
    dev.authorizer = rec
    await dev.start()
    admin = lightkube.AsyncClient(config=lightkube.KubeConfig.from_dict(dev.kubeconfig_dict()))
    return loopcluster.Cluster(name, dev, admin, data_dir), rec


async def _install(c: loopcluster.Cluster, text: str, sets: tuple[str, ...], drop: str = "") -> None:
    """Apply what `meshplane install` renders for the control plane's API use; `drop` ("Kind:verb:resource")
    removes one verb from the rendered roles of that kind."""
    applier = apply.Applier(c.admin)
    for obj in render.render(config.load([("in.yaml", text)], sets)):
        if obj["kind"] not in KINDS:
            continue
        if drop and obj["kind"] == drop.split(":")[0]:
            _, verb, resource = drop.split(":")
            for rule in obj["rules"]:
                if resource in rule["resources"]:
                    rule["verbs"] = [v for v in rule["verbs"] if v != verb]
        await applier.apply_one(obj)


@dataclass
class Plane:
    c1: loopcluster.Cluster
    c2: loopcluster.Cluster
    rec1: Recorder
    rec2: Recorder
    server: app.Discovery


@contextlib.asynccontextmanager
async def _start(tmp_path: Path, drop: str = "") -> AsyncIterator[Plane]:
    c1, rec1 = await _cluster("cluster1", tmp_path / "c1")
    c2, rec2 = await _cluster("cluster2", tmp_path / "c2")
    server: app.Discovery | None = None
    istiod: lightkube.AsyncClient | None = None
    try:
        await _install(c1, CLUSTER1_YAML, ("values.pilot.env.EXTERNAL_ISTIOD=true",), drop)
        await _install(c2, CLUSTER2_YAML.format(addr="127.0.3.1"), ())
        # the guide: cluster2's system namespace names its control plane's cluster
        ns2 = await c2.admin.get(core_v1.Namespace, NS)
        ns2.metadata.annotations = {"topology.istio.io/controlPlaneClusters": "cluster1"}
        await c2.admin.replace(ns2)
        for c in (c1, c2):
            await c.namespace(APP_NS)
        # create-remote-secret: cluster2's kubeconfig with the reader ServiceAccount's token
        reader_kc = c2.dev.kubeconfig_dict()
        token = await c2.token(NS, rbac.READER_SA, audiences=[], seconds=3600)
        for user in reader_kc["users"]:
            user["user"] = {"token": token}
        await c1.admin.create(kubeobjects.remote_secret(reader_kc))
        istiod = await c1.client_as(NS, "istiod")  # what the pod's projected token gives it
        opts = options.build(
            {
                "cluster_id": "cluster1",
                "network": "network1",
                "bind_address": "127.0.0.1",
                "xds_plaintext_port": 0,
                "secure_grpc_port": 0,
                "monitoring_port": 0,
                "webhook_port": 0,
                "debounce_after": "20ms",
                "debounce_max": "1s",
                "remote_cluster_timeout": "5s",
                "pod_name": "istiod-rbac",
            },
            {"EXTERNAL_ISTIOD": "true"},
        )
        server = app.Discovery(opts, local_client=istiod)
        await server.start()
        yield Plane(c1, c2, rec1, rec2, server)
    finally:
        if server is not None:
            await server.stop()
        for c in (c1, c2):
            await c.admin.close()
            await c.dev.stop()


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[Plane]:
    async with _start(tmp_path) as p:
        yield p


async def _root_cert(c: loopcluster.Cluster) -> str | None:
    try:
        cm = await c.admin.get(core_v1.ConfigMap, "istio-ca-root-cert", namespace=APP_NS)
    except lightkube.ApiError:
        return None
    return (cm.data or {}).get("root-cert.pem")


async def _webhook_bundle(c: loopcluster.Cluster) -> str:
    mwc = await c.admin.get(admissionregistration_v1.MutatingWebhookConfiguration, "istio-sidecar-injector")
    return (mwc.webhooks or [])[0].clientConfig.caBundle or ""


async def _review(server: app.Discovery, c: loopcluster.Cluster, cluster_id: str) -> str:
    """A CSR caller's token from `c` (sample's default ServiceAccount), reviewed in its own cluster."""
    assert server.security is not None
    await c.service_account(APP_NS, "default")
    token = await c.token(APP_NS, "default", audiences=["istio-ca"])
    caller = await server.security.chain.authenticate(
        authenticate.AuthRequest({"authorization": (f"Bearer {token}",), "clusterid": (cluster_id,)})
    )
    return caller.identities[0]


def _listed(attrs: seams.RequestAttributes, clusters: set[apicalls.Cluster]) -> bool:
    for call in apicalls.CALLS:
        if not call.clusters & clusters or attrs.verb not in call.verbs:
            continue
        if (attrs.api_group, attrs.resource, attrs.subresource) != (
            call.group,
            call.resource,
            call.subresource,
        ):
            continue
        if call.scope is apicalls.Scope.SYSTEM_NAMESPACE and attrs.namespace != NS:
            continue
        if call.scope is apicalls.Scope.CLUSTER and attrs.namespace:
            continue
        return True
    return False


def _describe(attrs: seams.RequestAttributes) -> str:
    where = f"namespace {attrs.namespace}" if attrs.namespace else "cluster-wide"
    res = "/".join(x for x in (attrs.resource, attrs.subresource) if x) or attrs.path
    return f"{attrs.user.username} {attrs.verb} {attrs.api_group or 'core'} {res} {where}"


async def test_control_plane_runs_under_exactly_the_rendered_roles(plane: Plane) -> None:
    server = plane.server
    await wait_for(server.ready, timeout=30, what="discovery ready under its ServiceAccount")
    await wait_for(lambda: _root_cert(plane.c1), timeout=20, what="root cert in cluster1")
    await wait_for(lambda: _root_cert(plane.c2), timeout=20, what="root cert in cluster2 (managed)")
    assert server.security is not None
    want = base64.b64encode(server.security.ca.root_pem.encode()).decode()
    for c in (plane.c1, plane.c2):

        async def patched(c: loopcluster.Cluster = c) -> bool:
            return await _webhook_bundle(c) == want

        await wait_for(patched, timeout=20, what=f"webhook caBundle patched in {c.name}")
    assert await _review(server, plane.c1, "cluster1") == "spiffe://cluster.local/ns/sample/sa/default"
    assert await _review(server, plane.c2, "cluster2") == "spiffe://cluster.local/ns/sample/sa/default"

    for rec, user, clusters in (
        (plane.rec1, ISTIOD_USER, {apicalls.Cluster.CONFIG, apicalls.Cluster.MANAGED}),
        (plane.rec2, READER_USER, {apicalls.Cluster.REMOTE, apicalls.Cluster.MANAGED}),
    ):
        mine = [(a, ok, why) for a, ok, why in rec.seen if a.user.username == user]
        assert mine, f"no request from {user} reached {rec.dev.name}"
        refused = [f"{_describe(a)}: {why}" for a, ok, why in mine if not ok]
        assert not refused, refused
        resource_requests = [a for a, _, _ in mine if a.resource]
        unlisted = sorted({_describe(a) for a in resource_requests if not _listed(a, clusters)})
        assert not unlisted, f"calls missing from kube/apicalls.py: {unlisted}"
        # what the run exercised covers each listed resource of that cluster (a verb of it at least)
        made = {(a.api_group, a.resource, a.verb) for a in resource_requests}
        for call in apicalls.CALLS:
            if call.clusters & clusters:
                assert any((call.group, call.resource, v) in made for v in call.verbs), call


async def test_a_missing_verb_is_refused_and_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The ClusterRole without `list` on services: the registry cannot sync, the control plane never
    reports ready, and its log names the refused call (on a real cluster: a pod that never readies)."""
    caplog.set_level(logging.WARNING)
    async with _start(tmp_path, drop="ClusterRole:list:services") as p:
        rec = p.rec1

        def refused() -> bool:
            return (
                any(a.verb == "list" and a.resource == "services" and not ok for a, ok, _ in rec.seen)
                and 'cannot list resource "services"' in caplog.text
            )

        await wait_for(refused, timeout=20, what="the services list refused and logged")
        assert not p.server.ready()
        assert rbac.istiod_cluster_rules()  # the rendered role itself is untouched by the test
