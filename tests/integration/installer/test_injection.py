"""Sidecar injection through a dev cluster's admission: the webhook configuration the installer renders,
the API server calling it (remote: via the selectorless istiod Service and its EndpointSlice to
remotePilotAddress:15017), and the injected pod that comes back."""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from meshplane.installer import config, pilot
from meshplane.webhooks import handler as inj_handler
from meshplane.webhooks import settings
from tests.support import webhooks
from tests.support.installenv import CLUSTER1_YAML, CLUSTER2_YAML, Env

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    app: helloworld
    version: v2
spec:
  containers:
  - name: helloworld
    image: registry.istio.io/release/examples-helloworld-v2:1.0
    ports:
    - containerPort: 5000
"""


def _primary_settings() -> settings.InjectionSettings:
    cfg = config.load([("cluster1.yaml", CLUSTER1_YAML)])
    return settings.InjectionSettings.from_values(json.loads(pilot.injector_configmap(cfg)["data"]["values"]))


@asynccontextmanager
async def _webhook(certs: webhooks.Certs, port: int = 0) -> AsyncIterator[tuple[str, int, list[str]]]:
    """The injection handler over TLS on a free 127.0.9.x address (port 15017 for the remote path)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "c").write_bytes(certs.cert_pem)
        (Path(d) / "k").write_bytes(certs.key_pem)
        ctx.load_cert_chain(Path(d) / "c", Path(d) / "k")
    paths: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        paths.append(request.path)
        return await handler(request)  # type: ignore[no-any-return]

    app = web.Application(middlewares=[record])
    inj_handler.add_routes(app, inj_handler.Injector(_primary_settings()))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for _ in range(20):
        host = f"127.0.9.{random.randint(10, 250)}"
        site = web.TCPSite(runner, host, port, ssl_context=ctx)
        try:
            await site.start()
        except OSError:
            continue
        break
    else:
        raise RuntimeError("no free 127.0.9.x address")
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield host, bound, paths
    finally:
        await runner.cleanup()


async def _kubectl(env: Env, *args: str, stdin: str | None = None) -> Any:
    return await asyncio.to_thread(env.kubectl, *args, stdin=stdin)


async def _patch_ca(env: Env, context: str, certs: webhooks.Certs) -> None:
    mwc = env.json("--context", context, "get", "mutatingwebhookconfiguration", "istio-sidecar-injector")
    ops = [
        {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": certs.ca_bundle}
        for i in range(len(mwc["webhooks"]))
    ]
    await _kubectl(
        env,
        "--context",
        context,
        "patch",
        "mutatingwebhookconfiguration",
        "istio-sidecar-injector",
        "--type=json",
        "-p",
        json.dumps(ops),
    )


def _proxy_env(pod: dict[str, Any]) -> dict[str, Any]:
    (proxy,) = [c for c in pod["spec"]["containers"] if c["name"] == "istio-proxy"]
    return {e["name"]: e.get("value") for e in proxy["env"]}


async def test_remote_pod_is_injected_through_the_istiod_service(env: Env) -> None:
    certs = webhooks.make_certs(["istiod.istio-system.svc"])
    async with _webhook(certs, port=15017) as (host, _port, paths):
        c2 = env.file("cluster2.yaml", CLUSTER2_YAML.format(addr=host))
        r = await asyncio.to_thread(
            env.meshplane, "install", "-y", "--context=cluster2", "-f", c2, "--no-wait"
        )
        assert r.returncode == 0, r.stderr
        await _patch_ca(env, "cluster2", certs)  # what the primary's webhook patcher does
        await _kubectl(env, "--context", "cluster2", "create", "namespace", "sample")
        await _kubectl(
            env, "--context", "cluster2", "label", "namespace", "sample", "istio-injection=enabled"
        )
        await _kubectl(
            env, "--context", "cluster2", "create", "-n", "sample", "-f", "-", stdin=POD.format(name="hw")
        )
        pod = await asyncio.to_thread(env.json, "--context", "cluster2", "get", "pod", "hw", "-n", "sample")
        assert paths == ["/inject/cluster/cluster2/net/network1"]
        assert [c["name"] for c in pod["spec"]["containers"]] == ["helloworld", "istio-proxy"]
        assert [c["name"] for c in pod["spec"]["initContainers"]] == ["istio-init"]
        env_vars = _proxy_env(pod)
        assert (
            env_vars["ISTIO_META_CLUSTER_ID"] == "cluster2" and env_vars["ISTIO_META_NETWORK"] == "network1"
        )
        assert env_vars["ISTIO_META_MESH_ID"] == "mesh1"
        assert json.loads(env_vars["PROXY_CONFIG"])["discoveryAddress"] == "istiod.istio-system.svc:15012"
        assert pod["metadata"]["labels"]["topology.istio.io/network"] == "network1"
        assert "sidecar.istio.io/status" in pod["metadata"]["annotations"]
        volumes = {v["name"] for v in pod["spec"]["volumes"]}
        assert {"istio-token", "istiod-ca-cert", "istio-envoy"} <= volumes

        # opted out, and a namespace without the label: the API server does not call the webhook
        opt_out = POD.format(name="optout").replace(
            "version: v2", 'version: v2\n    sidecar.istio.io/inject: "false"'
        )
        await _kubectl(env, "--context", "cluster2", "create", "-n", "sample", "-f", "-", stdin=opt_out)
        await _kubectl(
            env, "--context", "cluster2", "create", "-n", "default", "-f", "-", stdin=POD.format(name="plain")
        )
        for ns, name in (("sample", "optout"), ("default", "plain")):
            p = await asyncio.to_thread(env.json, "--context", "cluster2", "get", "pod", name, "-n", ns)
            assert [c["name"] for c in p["spec"]["containers"]] == ["helloworld"]
        assert len(paths) == 1


async def test_primary_pod_is_injected(env: Env) -> None:
    certs = webhooks.make_certs(["istiod.istio-system.svc"])
    async with _webhook(certs) as (host, port, paths):
        c1 = env.file("cluster1.yaml", CLUSTER1_YAML)
        r = await asyncio.to_thread(
            env.meshplane, "install", "-y", "--context=cluster1", "-f", c1, "--no-wait"
        )
        assert r.returncode == 0, r.stderr
        await _patch_ca(env, "cluster1", certs)
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "istiod-test",
                "namespace": "istio-system",
                "labels": {"kubernetes.io/service-name": "istiod"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
            "ports": [{"name": "https-webhook", "port": port, "protocol": "TCP"}],
        }
        await _kubectl(env, "--context", "cluster1", "apply", "-f", "-", stdin=json.dumps(slice_))
        await _kubectl(env, "--context", "cluster1", "create", "namespace", "sample")
        await _kubectl(
            env, "--context", "cluster1", "label", "namespace", "sample", "istio-injection=enabled"
        )
        await _kubectl(
            env, "--context", "cluster1", "create", "-n", "sample", "-f", "-", stdin=POD.format(name="hw")
        )
        pod = await asyncio.to_thread(env.json, "--context", "cluster1", "get", "pod", "hw", "-n", "sample")
        assert paths == ["/inject"]
        env_vars = _proxy_env(pod)
        assert (
            env_vars["ISTIO_META_CLUSTER_ID"] == "cluster1"
            and env_vars["CA_ADDR"] == "istiod.istio-system.svc:15012"
        )
