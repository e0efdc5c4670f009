"""Transparent sidecars, end to end, in network namespaces the test makes (lab.network): a client
and a server pod on a test bridge, each captured by `meshplane agent istio-iptables` with the
injector's args, each running the agent and a real Envoy as uid/gid 1337 with node metadata
INTERCEPTION_MODE=REDIRECT, fed by an istiod-like control plane on the bridge's host address.

An unmodified client (the real curl, a raw python socket) reaches the server's Service through
both sidecars with mTLS; an address outside the mesh is passed through under ALLOW_ANY and refused
under REGISTRY_ONLY, where an HTTP host outside the mesh answers only once a ServiceEntry declares
it; the proxies' own connection to the control plane is not captured; clean-up leaves no rule,
namespace or link behind."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshplane.agent import admin as admin_mod
from meshplane.agent import errors as agent_errors
from meshplane.lab.network import links, resolver
from meshplane.model import mesh
from meshplane.model.ids import ClusterId
from meshplane.networking import serviceentry
from tests.support import agentproc, istiod, labpod, memsource, podnet
from tests.support import meshdata as md
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy

MESHPLANE = str(Path(sys.executable).with_name("meshplane"))
# The injector's istio-init args (webhooks/sidecar.py), exactly.
INJECTED = ["-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*",
            "-d", "15090,15021,15020", "--log_output_level=default:info"]  # fmt: skip
PROXY_UID = 1337
AS_PROXY = ["setpriv", f"--reuid={PROXY_UID}", f"--regid={PROXY_UID}", "--clear-groups"]
NS = "sample"
SERVER_SA, CLIENT_SA = "helloworld", "sleep"
HTTP_PORT, TCP_PORT, OUTSIDE_PORT = 5000, 9000, 7070
HELLO = f"helloworld.{NS}.svc.cluster.local"
ECHO = f"tcp-echo.{NS}.svc.cluster.local"
PROXY_RETURN = f"-A ISTIO_OUTPUT -m owner --uid-owner {PROXY_UID} -j RETURN"
REDIRECT_OUT = "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"

# the server pod's app: answers every GET with the request headers it saw, as JSON
HEADERS_APP = """
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H)
print("ready", flush=True)
s.serve_forever()
"""


@dataclass
class Pod:
    name: str
    net: links.PodNet
    root: Path
    agent: agentproc.AgentProcess | None = None

    @property
    def ip(self) -> str:
        return str(self.net.address.ip)

    async def stats(self) -> dict[str, int]:
        assert self.agent is not None
        try:
            status, body = await self.agent.admin._request("GET", "/stats")
        except agent_errors.AgentError:
            return {}
        return admin_mod.parse_stats(body) if status == 200 else {}

    async def listener_connections(self) -> dict[str, int]:
        """Connections each listener (but admin) accepted: `listener.ADDRESS.downstream_cx_total`."""
        stats = await self.stats()
        assert stats, f"no stats from {self.name}'s Envoy"
        return {
            name: value
            for name, value in stats.items()
            if name.startswith("listener.")
            and name.endswith(".downstream_cx_total")
            and value
            and ".worker_" not in name
            and not name.startswith("listener.admin.")
        }

    async def stat(self, name: str) -> int:
        return (await self.stats()).get(name, 0)


def _run(
    *argv: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check, env=env)


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[podnet.TestLab]:
    for tool in ("iptables-restore", "curl", "setpriv"):
        assert shutil.which(tool), f"{tool} is not installed (.ci/run installs it)"
    async with podnet.bridged(tmp_path / "state") as made:
        yield made


@pytest.fixture
async def plane(net: podnet.TestLab) -> AsyncIterator[istiod.Istiod]:
    src = memsource.MemorySource(mesh.MeshConfig(mtls_mode=mesh.MtlsMode.STRICT))
    # on the bridge's host address: the pods reach it, nothing off this machine does
    async with istiod.running(src, host=net.gateway) as cp:
        yield cp


@pytest.fixture
async def started() -> AsyncIterator[list[Pod]]:
    """Pods whose agents this test started: stopped by PID, their roots removed, at the end."""
    pods: list[Pod] = []
    try:
        yield pods
    finally:
        codes = {}
        for pod in pods:
            if pod.agent is not None:
                codes[pod.name] = await pod.agent.stop()
        for pod in pods:
            shutil.rmtree(pod.root, ignore_errors=True)
        assert all(code == 0 for code in codes.values()), codes


async def make_pod(net: podnet.TestLab, name: str, n: int) -> links.PodNet:
    pod = await links.make_pod(net.book, lab_id=net.id, pod_key=f"{NS}/{name}", bridge=net.bridge,
                               cluster=net.cluster, ip=net.pod_ip(n), routes=net.cluster.all())  # fmt: skip
    await resolver.write(net.book, pod.netns, namespace=NS, pod_ip=str(pod.address.ip), hostname=name,
                         extra_hosts=[(net.vip(10), [HELLO, f"helloworld.{NS}", "helloworld"]),
                                      (net.vip(11), [ECHO, f"tcp-echo.{NS}", "tcp-echo"])])  # fmt: skip
    return pod


async def start_sidecar(
    net: podnet.TestLab, plane: istiod.Istiod, started: list[Pod], name: str, sa: str, podnet_: links.PodNet
) -> Pod:
    """istio-iptables in the pod's namespace (as the init container, root), then the agent and
    Envoy as uid/gid 1337 with INTERCEPTION_MODE=REDIRECT."""
    done = podnet.ns_exec(podnet_.netns, MESHPLANE, "agent", "istio-iptables", *INJECTED)
    assert done.returncode == 0, done.stderr
    root = proxy_root(net.id, name, token=plane.reviewer.issue(NS, sa), root_pem=plane.mesh.root_pem,
                      istiod_ip=plane.host)  # fmt: skip
    pod = Pod(name, podnet_, root)
    started.append(pod)
    extra = {"ISTIO_META_INTERCEPTION_MODE": "REDIRECT", "HOME": str(root)}
    env = agentproc.pod_env(root, pod=name, namespace=NS, sa=sa, ip=pod.ip, discovery=plane.address,
                            extra=extra)  # fmt: skip
    pod.agent = await agentproc.start(
        env, root, pod.ip, 15021, prefix=["ip", "netns", "exec", pod.net.netns, *AS_PROXY]
    )
    return pod


def proxy_root(lab_id: str, name: str, *, token: str, root_pem: str, istiod_ip: str) -> Path:
    """The pod's folder in a place uid 1337 can reach (pytest's tmp_path is private to root),
    owned by 1337 as the proxy's files would be."""
    root = Path(tempfile.mkdtemp(prefix=f"mp-{lab_id}-{name}-"))
    root.chmod(0o755)
    labpod.write(root, token=token, root_pem=root_pem, hosts={"istiod.istio-system.svc": istiod_ip})
    for path in [root, *root.rglob("*")]:
        os.chown(path, PROXY_UID, PROXY_UID)
    return root


def hello_and_echo_services(plane: istiod.Istiod, net: podnet.TestLab, server_ip: str) -> None:
    for svc, port_name, port, vip in (("helloworld", "http", HTTP_PORT, net.vip(10)),
                                      ("tcp-echo", "tcp", TCP_PORT, net.vip(11))):  # fmt: skip
        s = md.svc(svc, NS, ((port_name, port),), vips={"cluster1": [vip]}, service_accounts=[SERVER_SA])
        plane.source.services[s.hostname] = s
        plane.source.endpoints[s.hostname] = {
            ClusterId("cluster1"): (
                md.ep(server_ip, "cluster1", {port_name: port}, tls=True, sa=SERVER_SA, network="network1",
                      workload="helloworld-v1-1"),
            )
        }  # fmt: skip


def start_headers_app(netns: str) -> subprocess.Popen[str]:
    app = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", HEADERS_APP, str(HTTP_PORT)],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert app.stdout is not None
    if app.stdout.readline().strip() != "ready":
        podnet.stop(app)
        raise AssertionError("the headers app did not start")
    return app


def curl(netns: str, url: str, *headers: str) -> subprocess.CompletedProcess[str]:
    """The real curl in the pod's namespace, with no proxy in its environment."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    extra = [x for h in headers for x in ("-H", h)]
    return _run("ip", "netns", "exec", netns, "curl", "-sS", "--max-time", "5", "-D", "-", *extra, url,
                check=False, env=env)  # fmt: skip


def iptables_save(netns: str) -> str:
    return podnet.ns_exec(netns, "iptables-save", "-c", check=True).stdout


def _rule_packets(save: str, rule: str) -> int:
    """The packet counter of `rule` (exactly as `iptables-save` prints it) in `iptables-save -c`."""
    for line in save.splitlines():
        counters, _, text = line.partition("] ")
        if line.startswith("[") and text == rule:
            return int(counters[1:].split(":", 1)[0])
    raise AssertionError(f"no rule {rule!r} in\n{save}")


async def test_transparent_sidecars_mtls_passthrough_and_clean_up(
    net: podnet.TestLab, plane: istiod.Istiod, started: list[Pod]
) -> None:
    server_net = await make_pod(net, "helloworld-v1-1", 11)
    client_net = await make_pod(net, "sleep-1", 10)
    outside_net = await make_pod(net, "outside", 12)  # outside the mesh: no sidecar, no Service
    hello_and_echo_services(plane, net, str(server_net.address.ip))
    await plane.push("startup")

    apps: list[subprocess.Popen[str]] = []
    try:
        apps.append(start_headers_app(server_net.netns))
        apps.append(podnet.start_echo(server_net.netns, "0.0.0.0", TCP_PORT))
        apps.append(podnet.start_echo(outside_net.netns, str(outside_net.address.ip), OUTSIDE_PORT))
        apps.append(start_headers_app(outside_net.netns))  # an HTTP server outside the mesh

        # without capture nothing answers on the Service address (no kube-proxy here)
        before = curl(client_net.netns, f"http://{HELLO}:{HTTP_PORT}/")
        assert before.returncode != 0, before.stdout

        server = await start_sidecar(net, plane, started, "helloworld-v1-1", SERVER_SA, server_net)
        client = await start_sidecar(net, plane, started, "sleep-1", CLIENT_SA, client_net)
        for pod in (server, client):
            await wait_for(lambda pod=pod: _ready(pod), 60, message=f"{pod.name} ready")
        assert plane.ads is not None and len(plane.ads.connections) == 2
        metadata = {c.proxy.pod_name: c.proxy.metadata for c in plane.ads.connections}
        assert metadata["sleep-1"]["INTERCEPTION_MODE"] == "REDIRECT"

        # the proxies' own connections to the control plane (uid 1337) were not captured
        for pod in (server, client):
            save = iptables_save(pod.net.netns)
            assert _rule_packets(save, PROXY_RETURN) > 0, save
            assert _rule_packets(save, REDIRECT_OUT) == 0, save
            # and no listener of Envoy (virtualOutbound hands a connection on to the listener that
            # counts it) saw a connection: all it had was from the agent, over a unix socket
            assert await pod.listener_connections() == {}

        # 1) the real curl, by Service name, no proxy settings: through both sidecars, with mTLS
        got = await wait_for(lambda: _curl_ok(client.net.netns, f"http://{HELLO}:{HTTP_PORT}/"), 30,
                             message="curl through the sidecars")  # fmt: skip
        headers = json.loads(got.stdout.split("\n\n", 1)[1])
        assert f"URI=spiffe://cluster.local/ns/{NS}/sa/{CLIENT_SA}" in headers["x-forwarded-client-cert"]
        assert "x-envoy-upstream-service-time" in got.stdout.split("\n\n", 1)[0].lower()
        # captured: by iptables into virtualOutbound, handed on to 0.0.0.0_5000 (which counts it)
        assert _rule_packets(iptables_save(client.net.netns), REDIRECT_OUT) > 0
        assert (await client.stats()).get(f"listener.0.0.0.0_{HTTP_PORT}.downstream_cx_total", 0) > 0

        # 2) a raw TCP client to the TCP Service's address: its echo comes back through both sidecars
        tcp = podnet.echo(client.net.netns, net.vip(11), TCP_PORT, "ping")
        assert (tcp.returncode, tcp.stdout) == (0, "echo:ping"), tcp.stderr
        assert await client.stat(f"cluster.outbound|{TCP_PORT}||{ECHO}.upstream_cx_total") > 0
        assert await server.stat(f"cluster.inbound|{TCP_PORT}||.upstream_cx_total") > 0

        # 3) outside the mesh: passed through under ALLOW_ANY ...
        outside = str(outside_net.address.ip)
        passed = podnet.echo(client.net.netns, outside, OUTSIDE_PORT, "out")
        assert (passed.returncode, passed.stdout) == (0, "echo:out"), passed.stderr
        assert await client.stat("cluster.PassthroughCluster.upstream_cx_total") > 0
        assert (await client.listener_connections()).get("listener.0.0.0.0_15001.downstream_cx_total", 0) > 0
        # ... and refused under REGISTRY_ONLY
        plane.source.mesh = dataclasses.replace(
            plane.source.mesh, outbound_traffic_policy=mesh.OutboundTrafficPolicy.REGISTRY_ONLY
        )
        await plane.push("mesh")
        await wait_for(lambda: _echo_fails(client.net.netns, outside), 30, message="REGISTRY_ONLY applied")
        refused = podnet.echo(client.net.netns, outside, OUTSIDE_PORT, "again")
        assert refused.stdout == "", refused
        assert await client.stat("cluster.BlackHoleCluster.upstream_cx_none_healthy") > 0
        # the mesh's own Service still works
        assert (
            await asyncio.to_thread(curl, client.net.netns, f"http://{HELLO}:{HTTP_PORT}/")
        ).returncode == 0

        # 3b) an HTTP server outside the mesh, called by a host name the mesh does not know: under
        # REGISTRY_ONLY the port's route table refuses it (502); a ServiceEntry lets it through
        ext_url, ext_host = f"http://{outside}:{HTTP_PORT}/", f"Host: ext.example.test:{HTTP_PORT}"
        blocked = await asyncio.to_thread(curl, client.net.netns, ext_url, ext_host)
        assert " 502 " in blocked.stdout.split("\n", 1)[0], blocked.stdout + blocked.stderr
        entry_services, entry_shards = serviceentry.services(
            [
                serviceentry.parse(
                    {
                        "apiVersion": "networking.istio.io/v1",
                        "kind": "ServiceEntry",
                        "metadata": {"name": "ext", "namespace": NS},
                        "spec": {
                            "hosts": ["ext.example.test"],
                            "ports": [{"number": HTTP_PORT, "name": "http", "protocol": "HTTP"}],
                            "resolution": "STATIC",
                            "endpoints": [{"address": outside}],
                        },
                    }
                )
            ]
        )
        plane.source.services.update(entry_services)
        plane.source.endpoints.update({h: dict(s) for h, s in entry_shards.items()})
        await plane.push("service-entry")
        await wait_for(lambda: _curl_ok(client.net.netns, ext_url, ext_host), 30, message="ServiceEntry")
        # MESH_EXTERNAL: plaintext to the outside server (it has no sidecar), by the entry's cluster
        assert await client.stat(f"cluster.outbound|{HTTP_PORT}||ext.example.test.upstream_rq_200") > 0

        # 4) clean-up: istio-clean-iptables takes every rule away; then the fixtures remove the rest
        for pod in (server, client):
            assert pod.agent is not None
            assert await pod.agent.stop() == 0
            clean = podnet.ns_exec(pod.net.netns, MESHPLANE, "agent", "istio-clean-iptables")
            assert clean.returncode == 0, clean.stderr
            assert "ISTIO" not in iptables_save(pod.net.netns)
        uncaptured = await asyncio.to_thread(curl, client.net.netns, f"http://{HELLO}:{HTTP_PORT}/")
        assert uncaptured.returncode != 0, uncaptured.stdout
    finally:
        for app in apps:
            podnet.stop(app)


async def _echo_fails(netns: str, host: str) -> bool:
    done = await asyncio.to_thread(podnet.echo, netns, host, OUTSIDE_PORT, "x")
    return done.stdout != "echo:x"


async def _ready(pod: Pod) -> bool:
    assert pod.agent is not None
    status, _ = await pod.agent.ready()
    return status == 200


async def _curl_ok(netns: str, url: str, *headers: str) -> subprocess.CompletedProcess[str] | None:
    done = await asyncio.to_thread(curl, netns, url, *headers)
    return done if done.returncode == 0 and " 200 " in done.stdout.split("\n", 1)[0] else None
