"""A Sidecar applied with the real kubectl scopes what `meshplane discovery` sends a sidecar: with
`egress.hosts: ["./*", "istio-system/*"]` the proxy of that namespace receives only those services'
clusters (counted against an unscoped proxy's), its REGISTRY_ONLY policy turns the catch-all into
BlackHoleCluster, and deleting the Sidecar gives it every service back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from envoy.config.listener.v3 import listener_pb2

from meshplane.discovery import app
from meshplane.installer import config, render
from meshplane.xds import naming, resources
from tests.support import installenv, kubeobjects, xdsclient
from tests.support.clusters import ThreadedCluster, kubectl, lightkube_client, unique

SIDECAR = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: {ns}}}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
  outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}
"""


def _crds() -> str:
    objs = render.render(config.load([("in.yaml", installenv.CLUSTER1_YAML)], ()), None)
    return yaml.safe_dump_all([o for o in objs if o["kind"] == "CustomResourceDefinition"])


def _outbound_namespaces(client: xdsclient.XdsClient) -> list[str]:
    """The namespace of every outbound cluster's service (`outbound|PORT||name.ns.svc...`)."""
    names = client.view(resources.TYPE_CDS).resources
    return [n.rsplit("|", 1)[1].split(".")[1] for n in names if n.startswith("outbound|")]


def _fallback(client: xdsclient.XdsClient) -> str:
    raw = client.view(resources.TYPE_LDS).resources.get(naming.VIRTUAL_OUTBOUND)
    if raw is None:
        return ""
    lis = listener_pb2.Listener()
    raw.Unpack(lis)
    return lis.filter_chains[-1].filters[0].typed_config.value.decode(errors="replace")


async def test_sidecar_egress_hosts_scope_the_clusters_a_proxy_receives(
    clusters: tuple[ThreadedCluster, ThreadedCluster], discovery: app.Discovery, tmp_path: Path
) -> None:
    c1, _ = clusters
    kc = c1.write_kubeconfig(tmp_path / "kubeconfig")
    await asyncio.to_thread(kubectl, kc, "apply", "-f", "-", input_text=_crds())
    ns, other = unique("sample"), unique("other")
    w = lightkube_client(c1.kubeconfig)
    for n, name in ((ns, "a"), (ns, "b"), (other, "c"), (other, "d"), ("istio-system", unique("cp"))):
        await kubeobjects.add_service(w, n, name)
    await w.close()
    addr = f"127.0.0.1:{discovery.ports.xds_plaintext}"

    def node(pod: str, namespace: str) -> object:
        return xdsclient.make_node(
            xdsclient.sidecar_node_id(pod, namespace, "127.0.1.9"), {"CLUSTER_ID": "cluster1"}
        )

    async with (
        xdsclient.XdsClient(addr, node("sleep", ns)) as scoped,  # type: ignore[arg-type]
        xdsclient.XdsClient(addr, node("sleep", other)) as unscoped,  # type: ignore[arg-type]
    ):
        for c in (scoped, unscoped):
            await c.subscribe(resources.TYPE_CDS)
            await c.subscribe(resources.TYPE_LDS)
            await c.wait(lambda c: _outbound_namespaces(c).count(other) == 2, what="both services of other")
        assert naming.PASSTHROUGH_CLUSTER in _fallback(scoped)  # the mesh default: ALLOW_ANY

        await asyncio.to_thread(kubectl, kc, "apply", "-f", "-", input_text=SIDECAR.format(ns=ns))
        await scoped.wait(lambda c: other not in _outbound_namespaces(c), 20, what="scoped CDS")
        seen, everything = _outbound_namespaces(scoped), _outbound_namespaces(unscoped)
        assert sorted(seen) == sorted(n for n in everything if n in (ns, "istio-system"))
        assert seen.count(ns) == 2 and "istio-system" in seen
        assert len(seen) < len(everything) and everything.count(other) == 2  # the other proxy is not scoped
        await scoped.wait(lambda c: naming.BLACKHOLE_CLUSTER in _fallback(c), what="REGISTRY_ONLY")
        assert naming.PASSTHROUGH_CLUSTER in _fallback(unscoped)

        await asyncio.to_thread(kubectl, kc, "delete", "sidecar", "default", "-n", ns)
        await scoped.wait(lambda c: _outbound_namespaces(c).count(other) == 2, 20, what="unscoped again")
        await scoped.wait(lambda c: naming.PASSTHROUGH_CLUSTER in _fallback(c), what="ALLOW_ANY again")
