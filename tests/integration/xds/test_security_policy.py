"""PeerAuthentication and AuthorizationPolicy, with real Envoy sidecars and real traffic: pods in network
namespaces on a test bridge, captured by `meshplane agent istio-iptables`, each with the agent and
Envoy as uid 1337, fed by an istiod-like control plane (the harness of test_transparent_sidecars).

A plaintext client outside the mesh (no sidecar) talks to the pods' IPs, where the servers'
virtualInbound decides; a sidecar client reaches the Service with auto mTLS, which must follow the
server's mode (its app sees the caller's certificate in XFCC only over mTLS). AuthorizationPolicy
is observed as a user does: 200 or 403 (`RBAC: access denied`), an echo answered or a connection
closed."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from meshplane.lab.network import links, resolver
from meshplane.model import mesh
from meshplane.model.ids import ClusterId
from meshplane.policy import config as policy_config
from tests.integration.xds import test_transparent_sidecars as ts
from tests.support import agentproc, istiod, memsource, podnet
from tests.support import meshdata as md
from tests.support.wait import wait_for

pytestmark = pytest.mark.envoy

HTTP, TCP = 5000, 9000
HELLO = "helloworld.sample.svc.cluster.local"
OTHER = "helloworld.other.svc.cluster.local"


@pytest.fixture
async def plane(net: podnet.TestLab) -> AsyncIterator[istiod.Istiod]:
    src = memsource.MemorySource(mesh.MeshConfig())  # mesh-wide: PERMISSIVE, as Istio without policy
    async with istiod.running(src, host=net.gateway) as cp:
        yield cp


net = ts.net
started = ts.started


async def _pod(net: podnet.TestLab, ns: str, name: str, n: int) -> links.PodNet:
    pod = await links.make_pod(net.book, lab_id=net.id, pod_key=f"{ns}/{name}", bridge=net.bridge,
                               cluster=net.cluster, ip=net.pod_ip(n), routes=net.cluster.all())  # fmt: skip
    await resolver.write(net.book, pod.netns, namespace=ns, pod_ip=str(pod.address.ip), hostname=name,
                         extra_hosts=[(net.vip(10), [HELLO])])  # fmt: skip
    return pod


async def _sidecar(
    net: podnet.TestLab, plane: istiod.Istiod, started: list[ts.Pod], ns: str, name: str, sa: str,
    pn: links.PodNet, labels: dict[str, str], cluster_id: str = "cluster1",
) -> ts.Pod:  # fmt: skip
    done = podnet.ns_exec(pn.netns, ts.MESHPLANE, "agent", "istio-iptables", *ts.INJECTED)
    assert done.returncode == 0, done.stderr
    root = ts.proxy_root(net.id, name, token=plane.reviewer.issue(ns, sa), root_pem=plane.mesh.root_pem,
                         istiod_ip=plane.host)  # fmt: skip
    pod = ts.Pod(name, pn, root)
    started.append(pod)
    extra = {"ISTIO_META_INTERCEPTION_MODE": "REDIRECT", "HOME": str(root),
             "ISTIO_METAJSON_LABELS": json.dumps(labels)}  # fmt: skip
    env = agentproc.pod_env(
        root, pod=name, namespace=ns, sa=sa, ip=pod.ip, discovery=plane.address, extra=extra
    )
    pod.agent = await agentproc.start(
        env, root, pod.ip, 15021, prefix=["ip", "netns", "exec", pn.netns, *ts.AS_PROXY]
    )
    return pod


def _service(plane: istiod.Istiod, ns: str, ip: str, vip: str, labels: dict[str, str]) -> None:
    s = md.svc("helloworld", ns, (("http", HTTP), ("tcp", TCP)), vips={"cluster1": [vip]},
               service_accounts=["helloworld"])  # fmt: skip
    plane.source.services[s.hostname] = s
    plane.source.endpoints[s.hostname] = {
        ClusterId("cluster1"): (md.ep(ip, "cluster1", {"http": HTTP, "tcp": TCP}, tls=True, sa="helloworld",
                                      namespace=ns, workload=f"helloworld-{ns}", labels=labels),)
    }  # fmt: skip


def _pa(name: str, ns: str, mode: str, labels: dict[str, str] | None = None,
        ports: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {"mtls": {"mode": mode}}
    if labels:
        spec["selector"] = {"matchLabels": labels}
    if ports:
        spec["portLevelMtls"] = ports
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}  # fmt: skip


async def _apply(plane: istiod.Istiod, *objs: dict[str, Any]) -> None:
    cfg, problems = policy_config.build(objs)
    assert problems == []
    plane.source.policy = cfg
    await plane.push("ConfigUpdate")


def _http(netns: str, url: str) -> subprocess.CompletedProcess[str]:
    return ts.curl(netns, url)


async def _answers(netns: str, url: str) -> bool:
    done = await asyncio.to_thread(_http, netns, url)
    return done.returncode == 0 and " 200 " in done.stdout.split("\n", 1)[0]


async def _refused(netns: str, url: str) -> bool:
    done = await asyncio.to_thread(_http, netns, url)
    return done.returncode != 0 and "200" not in done.stdout


def _xfcc(done: subprocess.CompletedProcess[str]) -> str | None:
    head, _, body = done.stdout.partition("\n\n")
    assert " 200 " in head.split("\n", 1)[0], done.stdout
    return json.loads(body).get("x-forwarded-client-cert")


async def test_peer_authentication_levels_with_real_traffic(
    net: podnet.TestLab, plane: istiod.Istiod, started: list[ts.Pod]
) -> None:
    labels = {"app": "helloworld"}
    server_net = await _pod(net, "sample", "helloworld-1", 11)
    other_net = await _pod(net, "other", "helloworld-2", 13)
    client_net = await _pod(net, "sample", "sleep-1", 10)
    outside_net = await _pod(net, "outside", "outside-1", 12)  # no sidecar: a plaintext client
    server_ip, other_ip = str(server_net.address.ip), str(other_net.address.ip)
    _service(plane, "sample", server_ip, net.vip(10), labels)
    _service(plane, "other", other_ip, net.vip(11), labels)
    await plane.push("startup")
    apps = []
    try:
        for pn in (server_net, other_net):
            apps.append(ts.start_headers_app(pn.netns))
            apps.append(podnet.start_echo(pn.netns, "0.0.0.0", TCP))
        pods = [
            await _sidecar(net, plane, started, "sample", "helloworld-1", "helloworld", server_net, labels),
            await _sidecar(net, plane, started, "other", "helloworld-2", "helloworld", other_net, labels),
            await _sidecar(net, plane, started, "sample", "sleep-1", "sleep", client_net, {"app": "sleep"}),
        ]
        for pod in pods:
            await wait_for(lambda pod=pod: ts._ready(pod), 60, message=f"{pod.name} ready")
        outside = outside_net.netns
        to_sample, to_other = f"http://{server_ip}:{HTTP}/", f"http://{other_ip}:{HTTP}/"
        via_service = f"http://{HELLO}:{HTTP}/"

        # without policy (PERMISSIVE): plaintext from outside is accepted, the sidecar client uses mTLS
        await wait_for(lambda: _answers(outside, to_sample), 30, message="PERMISSIVE accepts plaintext")
        assert await _answers(outside, to_other)
        mtls = await wait_for(lambda: ts._curl_ok(client_net.netns, via_service), 30, message="mTLS")
        assert "URI=spiffe://cluster.local/ns/sample/sa/sleep" in (_xfcc(mtls) or "")

        # namespace STRICT in sample: the plaintext client is refused there, still accepted in `other`
        await _apply(plane, _pa("default", "sample", "STRICT"))
        await wait_for(lambda: _refused(outside, to_sample), 30, message="namespace STRICT refuses plaintext")
        assert await _answers(outside, to_other)
        tcp = podnet.echo(outside, server_ip, TCP, "plain")
        assert tcp.stdout == "", tcp  # every port of the workload
        mtls = await wait_for(lambda: ts._curl_ok(client_net.netns, via_service), 30, message="mTLS")
        assert "URI=spiffe://cluster.local/ns/sample/sa/sleep" in (_xfcc(mtls) or "")

        # workload DISABLE overrides the namespace: plaintext accepted; the client's auto mTLS follows
        # the server and sends plaintext (the app sees no client certificate)
        await _apply(plane, _pa("default", "sample", "STRICT"), _pa("hello", "sample", "DISABLE", labels))
        await wait_for(lambda: _answers(outside, to_sample), 30, message="workload DISABLE accepts plaintext")
        plain = await wait_for(lambda: ts._curl_ok(client_net.netns, via_service), 30, message="plaintext")

        async def no_xfcc() -> bool:
            done = await ts._curl_ok(client_net.netns, via_service)
            return done is not None and _xfcc(done) is None

        await wait_for(no_xfcc, 30, message="auto mTLS follows DISABLE")
        assert plain is not None

        # port-level exception: workload STRICT, but its TCP port PERMISSIVE
        await _apply(plane, _pa("hello", "sample", "STRICT", labels, {str(TCP): {"mode": "PERMISSIVE"}}))
        await wait_for(lambda: _refused(outside, to_sample), 30, message="workload STRICT refuses plaintext")

        async def tcp_echoes() -> bool:
            done = await asyncio.to_thread(podnet.echo, outside, server_ip, TCP, "plain")
            return (done.returncode, done.stdout) == (0, "echo:plain")

        await wait_for(tcp_echoes, 10, message="the PERMISSIVE port accepts plaintext")

        # the client's pooled plaintext connection was made under DISABLE and lives on until Envoy
        # drains it (as in Istio); its next connection uses mTLS again
        async def with_xfcc() -> bool:
            done = await ts._curl_ok(client_net.netns, via_service)
            return done is not None and "URI=spiffe://cluster.local/ns/sample/sa/sleep" in (_xfcc(done) or "")

        await wait_for(with_xfcc, 30, message="auto mTLS follows STRICT again")
        assert await _answers(outside, to_other)
    finally:
        for app in apps:
            podnet.stop(app)


# the server's app: answers every GET with the path it received, as JSON
PATH_APP = """
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H)
print("ready", flush=True)
s.serve_forever()
"""


def _ap(name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}  # fmt: skip


def _get(netns: str, url: str) -> tuple[int, str]:
    """(status, body) of a GET with the path exactly as given (curl --path-as-is); 0 when refused."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    argv = ["ip", "netns", "exec", netns, "curl", "-sS", "--path-as-is", "--max-time", "5", "-o", "-", "-w",
            "\n%{http_code}", url]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    body, _, code = done.stdout.rpartition("\n")
    return (int(code) if code.isdigit() else 0), body


async def _status(netns: str, url: str, want: int) -> bool:
    return (await asyncio.to_thread(_get, netns, url))[0] == want


def _path_app(netns: str) -> subprocess.Popen[str]:
    app = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", PATH_APP, str(HTTP)],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert app.stdout is not None and app.stdout.readline().strip() == "ready"
    return app


async def test_authorization_policy_http_and_tcp_with_real_traffic(
    net: podnet.TestLab, plane: istiod.Istiod, started: list[ts.Pod]
) -> None:
    labels = {"app": "helloworld"}
    server_net = await _pod(net, "sample", "helloworld-1", 11)
    sleep1_net = await _pod(net, "sample", "sleep-1", 10)
    sleep2_net = await _pod(net, "sample", "sleep-2", 13)
    other_net = await _pod(net, "sample", "notsleep-1", 14)
    outside_net = await _pod(net, "outside", "outside-1", 12)
    server_ip = str(server_net.address.ip)
    _service(plane, "sample", server_ip, net.vip(10), labels)
    svc = plane.source.services[md.svc("helloworld", "sample").hostname]
    # the Service has its ClusterIP in both clusters (cluster2's sleep reaches it by the same name)
    plane.source.services[svc.hostname] = dataclasses.replace(
        svc, cluster_vips={"cluster1": (net.vip(10),), "cluster2": (net.vip(10),)}
    )
    await plane.push("startup")
    apps = [_path_app(server_net.netns), podnet.start_echo(server_net.netns, "0.0.0.0", TCP)]
    try:
        server = await _sidecar(
            net, plane, started, "sample", "helloworld-1", "helloworld", server_net, labels
        )
        await _sidecar(net, plane, started, "sample", "sleep-1", "sleep", sleep1_net, {"app": "sleep"})
        await _sidecar(net, plane, started, "sample", "sleep-2", "sleep", sleep2_net, {"app": "sleep"},
                       cluster_id="cluster2")  # fmt: skip
        await _sidecar(
            net, plane, started, "sample", "notsleep-1", "notsleep", other_net, {"app": "notsleep"}
        )
        for pod in started:
            await wait_for(lambda pod=pod: ts._ready(pod), 60, message=f"{pod.name} ready")
        hello = f"http://{HELLO}:{HTTP}"
        direct = f"http://{server_ip}:{HTTP}"
        for pn in (sleep1_net, sleep2_net, other_net, outside_net):
            url = f"{hello}/ok" if pn is not outside_net else f"{direct}/ok"
            await wait_for(
                lambda pn=pn, url=url: _status(pn.netns, url, 200), 30, message=f"{pn.netns} no policy"
            )

        # AUDIT changes nothing a caller sees; its RBAC filter (action LOG, the only one so far)
        # evaluates every request and marks matches with Envoy's access-log hint
        audit = _ap(
            "audit-ok", "sample", {"action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/ok"]}}]}]}
        )
        await _apply(plane, audit)
        evaluated = "http.inbound_0.0.0.0_5000.rbac.allowed"

        async def audited() -> bool:
            before = await server.stat(evaluated)
            status = (await asyncio.to_thread(_get, outside_net.netns, f"{direct}/ok"))[0]
            return status == 200 and await server.stat(evaluated) > before

        await wait_for(audited, 30, message="the AUDIT filter evaluates requests and lets them through")

        # DENY /admin: enforced on the path Envoy normalises (RFC 3986 dot segments, percent-decoded
        # unreserved characters), from a plaintext client straight to the pod (no client sidecar
        # normalises before); other spellings reach the app as the different paths they are
        admin = {"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}
        deny_admin = _ap("deny-admin", "sample", {"selector": {"matchLabels": labels}, "action": "DENY",
                                                  "rules": [admin]})  # fmt: skip
        await _apply(plane, deny_admin)
        await wait_for(lambda: _status(outside_net.netns, f"{direct}/admin", 403), 30, message="DENY /admin")
        spellings = ("/admin", "/admin/../admin", "/%61dmin", "/ok/../admin/x", "/admin/")
        refused = {p: _get(outside_net.netns, f"{direct}{p}") for p in spellings}
        assert {p: s for p, (s, _) in refused.items()} == dict.fromkeys(refused, 403), refused
        assert "RBAC: access denied" in refused["/admin"][1]
        for spelled in ("/ADMIN", "/%2Fadmin"):
            status, body = _get(outside_net.netns, f"{direct}{spelled}")
            assert status == 200, (spelled, body)
            assert json.loads(body)["path"] != "/admin", body  # the app never sees /admin
        assert _get(outside_net.netns, f"{direct}/ok")[0] == 200

        # ALLOW only cluster.local/ns/sample/sa/sleep: cluster2's sleep is let in, another service
        # account (cluster1) and the plaintext client get 403; DENY still wins for sleep on /admin
        allow_sleep = _ap("allow-sleep", "sample", {"selector": {"matchLabels": labels}, "rules": [
            {"from": [{"source": {"principals": ["cluster.local/ns/sample/sa/sleep"]}}]}]})  # fmt: skip
        await _apply(plane, deny_admin, allow_sleep)
        await wait_for(lambda: _status(other_net.netns, f"{hello}/ok", 403), 30, message="ALLOW sleep only")
        assert _get(sleep2_net.netns, f"{hello}/ok")[0] == 200
        assert _get(sleep1_net.netns, f"{hello}/ok")[0] == 200
        assert _get(outside_net.netns, f"{direct}/ok")[0] == 403
        # a client sidecar's pooled connection made before the change is served once more by the
        # old filter chain, which Envoy then drains (Connection: close); the next one sees the DENY
        await wait_for(
            lambda: _status(sleep2_net.netns, f"{hello}/admin", 403), 30, message="DENY over ALLOW"
        )

        # TCP (network RBAC). A DENY whose rule has an HTTP-only field (paths) loses that field on a
        # TCP port and so denies every connection there, as Istio does (a wider deny, never a
        # narrower one): sleep's echo is refused although ALLOW lets sleep in
        async def tcp_echo() -> str:
            done = await asyncio.to_thread(podnet.echo, sleep1_net.netns, net.vip(10), TCP, "tcp")
            return done.stdout

        async def tcp_refused() -> bool:
            return await tcp_echo() == ""

        async def tcp_answered() -> bool:
            return await tcp_echo() == "echo:tcp"

        assert await tcp_refused()
        # scoped to the HTTP port, the DENY leaves TCP to the ALLOW, which lets sleep's principal in
        http_admin = {"to": [{"operation": {"paths": ["/admin", "/admin/*"], "ports": [str(HTTP)]}}]}
        deny_admin = _ap("deny-admin", "sample", {"selector": {"matchLabels": labels}, "action": "DENY",
                                                  "rules": [http_admin]})  # fmt: skip
        await _apply(plane, deny_admin, allow_sleep)
        await wait_for(tcp_answered, 30, message="ALLOW by principal on TCP")
        # (each worker of sleep's Envoy may hold a connection pooled before the DENY: wait them out)
        await wait_for(
            lambda: _status(sleep1_net.netns, f"{hello}/admin", 403), 30, message="DENY /admin (sleep)"
        )
        # a DENY by source namespace on the TCP port refuses the connection
        by_ns = {
            "from": [{"source": {"namespaces": ["sample"]}}],
            "to": [{"operation": {"ports": [str(TCP)]}}],
        }
        deny_ns_tcp = _ap("deny-sample-tcp", "sample", {"action": "DENY", "rules": [by_ns]})

        await _apply(plane, deny_admin, allow_sleep, deny_ns_tcp)
        await wait_for(tcp_refused, 30, message="TCP DENY by source namespace")
        assert _get(sleep1_net.netns, f"{hello}/ok")[0] == 200  # HTTP port untouched

        # an ALLOW policy without rules in the root namespace denies everything, mesh-wide
        await _apply(plane, _ap("allow-nothing", "istio-system", {}))
        await wait_for(lambda: _status(sleep1_net.netns, f"{hello}/ok", 403), 30, message="empty ALLOW")
        await wait_for(
            lambda: _status(sleep2_net.netns, f"{hello}/ok", 403), 30, message="empty ALLOW (cluster2)"
        )
    finally:
        for app in apps:
            podnet.stop(app)


# ---- RequestAuthentication (JWT)

ISSUER = "https://issuer.meshplane.test"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(key: rsa.RSAPrivateKey, kid: str) -> str:
    nums = key.public_key().public_numbers()
    raw = lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")  # noqa: E731
    return json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                                 "n": _b64(raw(nums.n)), "e": _b64(raw(nums.e))}]})  # fmt: skip


def _token(key: rsa.RSAPrivateKey, kid: str, **claims: Any) -> str:
    """A JWT (RS256) signed with `key`, as an identity provider issues it."""
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": "alice", "aud": "helloworld", "iat": now, "exp": now + 600} | claims
    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(payload).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(sig)}"


def _get_with(netns: str, url: str, token: str | None) -> tuple[int, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    argv = ["ip", "netns", "exec", netns, "curl", "-sS", "--max-time", "5", *auth, "-o", "-", "-w",
            "\n%{http_code}", url]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    body, _, code = done.stdout.rpartition("\n")
    return (int(code) if code.isdigit() else 0), body


async def test_request_authentication_with_jwt_and_request_principals(
    net: podnet.TestLab, plane: istiod.Istiod, started: list[ts.Pod]
) -> None:
    labels = {"app": "helloworld"}
    server_net = await _pod(net, "sample", "helloworld-1", 11)
    outside_net = await _pod(net, "outside", "outside-1", 12)
    server_ip = str(server_net.address.ip)
    _service(plane, "sample", server_ip, net.vip(10), labels)
    await plane.push("startup")
    key, other = _key(), _key()
    apps = [ts.start_headers_app(server_net.netns)]
    try:
        await _sidecar(net, plane, started, "sample", "helloworld-1", "helloworld", server_net, labels)
        await wait_for(lambda: ts._ready(started[0]), 60, message="server ready")
        url = f"http://{server_ip}:{HTTP}/"
        get = lambda token: asyncio.to_thread(_get_with, outside_net.netns, url, token)  # noqa: E731
        await wait_for(lambda: _code(get(None), 200), 30, message="no policy")

        rule = {"issuer": ISSUER, "audiences": ["helloworld"], "jwks": _jwks(key, "k1")}
        ra = {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
              "metadata": {"name": "jwt", "namespace": "sample"},
              "spec": {"selector": {"matchLabels": labels}, "jwtRules": [rule]}}  # fmt: skip
        anyone = {"from": [{"source": {"requestPrincipals": ["*"]}}]}
        need_jwt = _ap("require-jwt", "sample", {"selector": {"matchLabels": labels}, "rules": [anyone]})
        # RequestAuthentication alone: no token passes, a bad one is refused (401)
        await _apply(plane, ra)
        await wait_for(
            lambda: _code(get(_token(other, "k1")), 401), 30, message="RequestAuthentication applied"
        )
        assert (await get(None))[0] == 200
        # with an AuthorizationPolicy requiring a request principal, no token is 403
        await _apply(plane, ra, need_jwt)
        await wait_for(lambda: _code(get(None), 403), 30, message="requestPrincipals required")
        status, body = await get(_token(key, "k1"))
        assert status == 200, body
        assert "authorization" not in json.loads(body)  # the token is not forwarded (forwardOriginalToken)
        refused = {
            "expired": _token(key, "k1", exp=int(time.time()) - 120, iat=int(time.time()) - 900),
            "wrongly signed": _token(other, "k1"),
            "wrong audience": _token(key, "k1", aud="someone-else"),
            "another issuer": _token(key, "k1", iss="https://evil.example"),
        }
        got = {what: (await get(token))[0] for what, token in refused.items()}
        # a token for another audience is not rejected by jwt_authn (requires_any with allow_missing
        # lets it through unverified), but it yields no request principal: 403 from the policy
        assert got == {"expired": 401, "wrongly signed": 401, "wrong audience": 403, "another issuer": 401}, (
            got
        )
        # a principal-specific ALLOW: alice in, bob 403
        only_alice = _ap("require-jwt", "sample", {"selector": {"matchLabels": labels}, "rules": [
            {"from": [{"source": {"requestPrincipals": [f"{ISSUER}/alice"]}}]}]})  # fmt: skip
        await _apply(plane, ra, only_alice)
        await wait_for(lambda: _code(get(_token(key, "k1", sub="bob")), 403), 30, message="alice only")
        assert (await get(_token(key, "k1")))[0] == 200
    finally:
        for app in apps:
            podnet.stop(app)


async def _code(pending: Any, want: int) -> bool:
    return bool((await pending)[0] == want)
