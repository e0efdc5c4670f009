"""Issue 6 end to end: the whole guide on the lab (two dev clusters, the control plane, the
east-west gateway, real Envoy carrying real traffic), then the fault cases on the same lab.

One lab per mode: `lab up` + `lab guide` + `lab verify` once, the fault tests after, and
`lab down` at the end must leave nothing running or listening. The modes (issue 10): `netns`,
every pod in its own network namespace with istio-init's capture and the real `curl` (ranges
picked free on this host), and `loopback`, the fallback with explicit-proxy sidecars."""

from __future__ import annotations

import base64
import collections
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshplane.agent import uds
from meshplane.lab import addresses, podexec
from meshplane.lab.network import plan as netplan
from tests.integration.lab.test_lab_cli import lab, pids
from tests.support import clusters, labnode, podnet
from tests.support.wait import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.envoy]
SAMPLES = str(labnode.ROOT / "samples")
HOST = "helloworld.sample:5000"
VERSION = re.compile(r"Hello version: (v\d), instance: (\S+)")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str) -> None:
        super().__init__("localhost", timeout=5)
        self._socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(self._socket_path)


def unix_get(path: Path, url: str) -> str:
    """GET on Envoy's admin unix socket at the in-pod path the agent used (an abstract socket when the
    lab path is longer than sun_path allows; agent.uds decides the same way)."""
    conn = _UnixConnection(uds.address(path).socket_path)
    try:
        conn.request("GET", url)
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200, (resp.status, body[:200])
        return body
    finally:
        conn.close()


@dataclass
class Lab:
    dir: Path
    base: int
    verify_output: str
    mode: str = "loopback"

    def in_pod(
        self, pod: dict[str, object], container: str, argv: list[str]
    ) -> subprocess.CompletedProcess[str]:
        """netns mode: run `argv` in `pod` (one of cluster1's or cluster2's), as `lab exec` does."""
        cmd = podexec.argv(netplan.load(self.dir / "network.json"), pod, container, argv)
        return subprocess.run(
            cmd, capture_output=True, text=True, env=podexec.env(pod), timeout=120, check=False
        )

    def envoy_admin(self, context: str, pod: dict[str, object], url: str, method: str = "GET") -> str:
        """`method` (GET) on the Envoy admin of a sample pod (its unix socket; in netns mode from
        inside the pod, where an abstract socket lives)."""
        name = str(pod["metadata"]["name"])  # type: ignore[index]
        admin = self.pod_dir(context, "sample", name) / "c" / "istio-proxy" / "etc/istio/proxy/admin.sock"
        if self.mode == "loopback":
            assert method == "GET", "loopback mode: GET only"
            return unix_get(admin, url)
        where = uds.address(admin)  # an abstract socket lives in the pod's network namespace
        how = ["--abstract-unix-socket", where.abstract] if where.abstract else ["--unix-socket", str(admin)]
        argv = ["curl", "-sS", "--fail", "-X", method, *how, f"http://localhost{url}"]
        done = self.in_pod(pod, "istio-proxy", argv)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def kubectl(self, context: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return clusters.kubectl(self.kubeconfig, "--context", context, *args, check=check)

    def pod(self, context: str, namespace: str, app: str) -> dict[str, object]:
        items = json.loads(
            self.kubectl(context, "-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json").stdout
        )["items"]
        running = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        assert running, f"no {app} pod in {context}/{namespace}"
        return running[0]  # type: ignore[no-any-return]

    def pod_dir(self, context: str, namespace: str, name: str) -> Path:
        return self.dir / "nodes" / context / "pods" / namespace / name

    def pid(self, context: str, namespace: str, pod: str, container: str) -> int:
        return int(
            (self.pod_dir(context, namespace, pod) / "pids" / f"{container}.pid").read_text().split()[0]
        )

    def sidecar(self, context: str) -> str:
        """The sleep pod's sidecar outbound listener (pod-local address, port 15001)."""
        pod = self.pod(context, "sample", "sleep")
        ip = str(pod["status"]["podIP"])  # type: ignore[index]
        cidr = f"127.{self.base}.{1 if context == 'cluster1' else 2}.0/24"
        return f"{addresses.local_address(ip, cidr, addresses.default_local_cidr(cidr))}:15001"

    def hello(self, context: str, n: int) -> collections.Counter[str]:
        """n requests from `context`'s sleep pod through its sidecar; versions seen (errors counted).
        netns mode: the real curl in the pod, its traffic captured; loopback: the sidecar as a proxy."""
        if self.mode == "netns":
            curl = f'curl -sS -m 5 http://{HOST}/hello || echo "error: curl $?"'
            loop = f"for i in $(seq {n}); do {curl}; echo; done"
            out = self.in_pod(self.pod(context, "sample", "sleep"), "sleep", ["sh", "-c", loop]).stdout
            seen: collections.Counter[str] = collections.Counter()
            for line in filter(None, (ln.strip() for ln in out.splitlines())):
                m = VERSION.search(line)
                seen[m.group(1) if m else line if line.startswith("error") else "bad-body"] += 1
            return seen
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": f"http://{self.sidecar(context)}"})
        )
        seen = collections.Counter()
        for _ in range(n):
            try:
                with opener.open(f"http://{HOST}/hello", timeout=5) as r:
                    m = VERSION.search(r.read().decode())
                    seen[m.group(1) if m else "bad-body"] += 1
            except OSError as e:
                seen[f"error: {type(e).__name__}"] += 1
        return seen


def demo(d: Path, base: int, mode: str) -> subprocess.CompletedProcess[str]:
    """`meshplane demo` (what `make demo` runs): lab up + guide + verify + summary. A second run on
    the same lab passes no placement: the lab keeps its own."""
    if (d / "lab.json").exists():
        where: list[str] = []
    elif mode == "loopback":
        where = ["--network", "loopback", "--address-base", str(base)]
    else:
        where = ["--network", "netns", *free_ranges()]
    return subprocess.run(
        [sys.executable, "-m", "meshplane", "demo", "--dir", str(d), *where, "--samples", SAMPLES],
        capture_output=True,
        text=True,
        env=labnode.env(),
        timeout=600,
        check=False,
    )


def free_ranges() -> list[str]:
    """`--range` options: six distinct /24s no route of this host overlaps (podnet's test block)."""
    while True:
        one, two = podnet.free_cluster("cluster1"), podnet.free_cluster("cluster2")
        nets = [r.net for c in (one, two) for r in c.all()]
        if len(set(nets)) == len(nets):
            break
    return [
        f"--range={c.cluster}.{kind}={r.net}"
        for c in (one, two)
        for kind, r in zip(netplan.KINDS, c.all(), strict=True)
    ]


def leftovers(lab_id: str) -> list[str]:
    """Namespaces, links and iptables lines of the lab `lab_id` still on the host."""
    mark = f"mp-{lab_id}"
    found = [n for n in podnet.run("ip", "netns", "list").stdout.split() if n.startswith(mark)]
    found += [ln for ln in podnet.run("ip", "-o", "link").stdout.splitlines() if mark in ln]
    found += [ln for ln in podnet.run("iptables-save").stdout.splitlines() if mark in ln]
    return found


@pytest.fixture(scope="module", params=["netns", "loopback"])
def guided(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    mode = str(request.param)
    if mode == "netns":
        podnet.require_root()
    base = labnode.address_base()
    d = tmp_path_factory.mktemp(f"e2e-{mode}") / "lab"
    pod_pids: list[int] = []
    lab_id = ""
    try:
        run = demo(d, base, mode)
        if (d / "network.json").exists():
            lab_id = netplan.load(d / "network.json").lab_id
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
        assert "[9/9] Attach cluster2 as a remote cluster of cluster1" in run.stdout
        assert "verified: both clusters reach helloworld v1 and v2" in run.stdout
        assert f"network    {mode}:" in run.stdout
        yield Lab(d, base, run.stdout, mode)
        pod_pids = [int(p.read_text().split()[0]) for p in (d / "nodes").rglob("*.pid")]
    finally:
        down = lab("down", "--dir", str(d))
    assert down.returncode == 0, down.stderr
    assert not [p for p in [*pids(d).values(), *pod_pids] if labnode.alive(p)]
    assert labnode.listening(f"127.{base}.") == [] and labnode.listening(f"127.{base + 1}.") == []
    if lab_id:
        assert leftovers(lab_id) == []


def test_guide_then_both_versions_from_both_clusters(guided: Lab) -> None:
    for cluster in ("cluster1", "cluster2"):
        (line,) = [ln for ln in guided.verify_output.splitlines() if ln.startswith(f"{cluster}: ")]
        assert "v1×" in line and "v2×" in line and "no sidecar" not in line
    # cluster2's workloads got their sidecar through the east-west gateway with cluster2's identity
    pod = guided.pod("cluster2", "sample", "helloworld")
    proxy = next(c for c in pod["spec"]["containers"] if c["name"] == "istio-proxy")  # type: ignore[index]
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["ISTIO_META_CLUSTER_ID"] == "cluster2" and env["ISTIO_META_NETWORK"] == "network1"
    # the traffic between the clusters is mTLS: the v2 app saw cluster1's sleep identity
    assert set(guided.hello("cluster1", 10)) == {"v1", "v2"}
    log = guided.pod_dir("cluster2", "sample", str(pod["metadata"]["name"])) / "logs" / "helloworld.log"  # type: ignore[index]
    assert "spiffe://cluster.local/ns/sample/sa/sleep" in log.read_text()


def test_requests_survive_a_killed_control_plane(guided: Lab) -> None:
    istiod = str(guided.pod("cluster1", "istio-system", "istiod")["metadata"]["name"])  # type: ignore[index]
    old = guided.pid("cluster1", "istio-system", istiod, "discovery")
    os.kill(old, signal.SIGKILL)
    # the proxies keep their last config: traffic flows while the control plane is gone
    for cluster in ("cluster1", "cluster2"):
        seen = guided.hello(cluster, 10)
        assert set(seen) == {"v1", "v2"}, (cluster, seen)
    # the kubelet restarts it; every proxy reconnects and is SYNCED again
    wait_until(lambda: guided.pid("cluster1", "istio-system", istiod, "discovery") != old, 30, what="restart")

    def all_synced() -> bool:
        cmd = [sys.executable, "-m", "meshplane", "proxy-status", "--kubeconfig", str(guided.kubeconfig)]
        r = subprocess.run(
            [*cmd, "--context", "cluster1"],
            capture_output=True,
            text=True,
            env=labnode.env(),
            timeout=60,
            check=False,
        )
        rows = [line.split() for line in r.stdout.splitlines()[1:] if line.strip()]
        return r.returncode == 0 and len(rows) == 5 and all(row[2:5] == ["SYNCED"] * 3 for row in rows)

    wait_until(all_synced, 60, interval=1, what="every proxy resynced")


def test_remote_secret_removed_and_reapplied(guided: Lab) -> None:
    secret = guided.kubectl(
        "cluster1", "-n", "istio-system", "get", "secret", "istio-remote-secret-cluster2", "-o", "json"
    ).stdout
    start = time.monotonic()
    guided.kubectl("cluster1", "-n", "istio-system", "delete", "secret", "istio-remote-secret-cluster2")
    wait_until(
        lambda: set(guided.hello("cluster1", 6)) == {"v1"}, 5, interval=0.1, what="v2 gone from cluster1"
    )
    assert time.monotonic() - start < 5
    assert set(guided.hello("cluster1", 10)) == {"v1"}
    restore = json.loads(secret)
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        restore["metadata"].pop(key, None)
    clusters.kubectl(
        guided.kubeconfig, "--context", "cluster1", "apply", "-f", "-", input_text=json.dumps(restore)
    )
    wait_until(lambda: "v2" in guided.hello("cluster1", 6), 15, interval=0.2, what="v2 back")


def test_cluster2_api_server_restart_loses_nothing(guided: Lab) -> None:
    def inventory() -> dict[str, str]:
        out = {}
        for kind in ("pods", "services", "endpointslices", "configmaps", "secrets", "serviceaccounts"):
            items = json.loads(guided.kubectl("cluster2", "get", kind, "-A", "-o", "json").stdout)["items"]
            out.update(
                {
                    f"{kind}/{i['metadata'].get('namespace', '')}/{i['metadata']['name']}": i["metadata"][
                        "uid"
                    ]
                    for i in items
                }
            )
        return out

    before = inventory()
    api = pids(guided.dir)["cluster2/api"]
    os.kill(api, signal.SIGKILL)
    wait_until(lambda: not labnode.alive(api), 10, what="api server gone")
    again = lab("up", "--dir", str(guided.dir))
    assert again.returncode == 0, again.stderr
    after = inventory()
    assert {k: v for k, v in before.items() if k in after} == {k: after[k] for k in before if k in after}
    assert set(before) <= set(after), sorted(set(before) - set(after))
    wait_until(
        lambda: set(guided.hello("cluster2", 10)) == {"v1", "v2"},
        30,
        interval=0.5,
        what="traffic after restart",
    )


def test_deleted_pod_leaves_envoy_before_its_process_exits(guided: Lab) -> None:
    pod = guided.pod("cluster2", "sample", "helloworld")
    name, ip = str(pod["metadata"]["name"]), str(pod["status"]["podIP"])  # type: ignore[index]
    app_pid = guided.pid("cluster2", "sample", name, "helloworld")
    cluster = "outbound|5000||helloworld.sample.svc.cluster.local"
    sleep = guided.pod("cluster1", "sample", "sleep")

    def usable_in_envoy() -> bool:
        data = json.loads(guided.envoy_admin("cluster1", sleep, "/clusters?format=json"))
        for c in data.get("cluster_statuses", []):
            if c["name"] == cluster:
                for h in c.get("host_statuses", []):
                    if h["address"]["socket_address"]["address"] == ip:
                        return h.get("health_status", {}).get("eds_health_status", "HEALTHY") == "HEALTHY"
        return False

    assert usable_in_envoy()
    guided.kubectl("cluster2", "-n", "sample", "delete", "pod", name, "--wait=false")
    wait_until(lambda: not usable_in_envoy(), 10, interval=0.05, what="endpoint out of Envoy")
    assert labnode.alive(app_pid), "the app exited before its endpoint left Envoy"
    wait_until(lambda: not labnode.alive(app_pid), 60, what="process gone")
    # the Deployment replaces it and traffic to v2 resumes
    wait_until(lambda: "v2" in guided.hello("cluster1", 6), 60, interval=0.5, what="replacement serves")


def test_a_second_demo_reuses_the_lab(guided: Lab) -> None:
    before = pids(guided.dir)
    again = demo(guided.dir, guided.base, guided.mode)
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-3000:]
    assert "verified: both clusters reach helloworld v1 and v2" in again.stdout
    assert pids(guided.dir) == before  # nothing restarted


def test_control_plane_under_its_service_account_and_proxies_scraped_on_15020(guided: Lab) -> None:
    """Issue 12: the control plane runs as ServiceAccount istiod (in-cluster config from the pod's
    projected token, no kubeconfig: the RBAC-enforced path of a real cluster), and a sidecar answers a
    Prometheus scrape on 15020 with the agent's and Envoy's series, as its annotations advertise."""
    istiod = str(guided.pod("cluster1", "istio-system", "istiod")["metadata"]["name"])  # type: ignore[index]
    pid = guided.pid("cluster1", "istio-system", istiod, "discovery")
    environ = dict(
        item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
    )
    assert "KUBECONFIG" not in environ and environ.get("KUBERNETES_SERVICE_HOST")
    sa_dir = guided.pod_dir("cluster1", "istio-system", istiod) / "c" / "discovery"
    token = (sa_dir / "var/run/secrets/kubernetes.io/serviceaccount/token").read_text()
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "system:serviceaccount:istio-system:istiod"

    target = guided.pod("cluster1", "sample", "helloworld")
    annotations = target["metadata"]["annotations"]  # type: ignore[index]
    assert annotations["prometheus.io/port"] == "15020"
    assert annotations["prometheus.io/path"] == "/stats/prometheus"
    url = f"http://{target['status']['podIP']}:15020/stats/prometheus"  # type: ignore[index]
    if guided.mode == "netns":  # scraped from another pod, as an in-mesh Prometheus does
        done = guided.in_pod(
            guided.pod("cluster1", "sample", "sleep"), "sleep", ["curl", "-sS", "--fail", url]
        )
        assert done.returncode == 0, done.stderr[-2000:]
        text = done.stdout
    else:
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "istio_agent_num_outgoing_requests" in names and "istio_agent_cert_expiry_seconds" in names
    assert "envoy_server_live" in names


ONLY_IN_CLUSTER2 = """
apiVersion: v1
kind: Service
metadata: {name: only2, namespace: sample}
spec:
  selector: {app: helloworld}
  ports: [{name: http, port: 5000}]
"""
DNS_CLIENT = """
apiVersion: v1
kind: Pod
metadata:
  name: dnsclient
  namespace: sample
  labels: {app: dnsclient}
  annotations:
    proxy.istio.io/config: '{"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true", "CAPTURE_ALL_DNS": "true"}}'
spec:
  containers:
  - {name: dnsclient, image: curlimages/curl, command: [/bin/sleep, infinity]}
"""


def test_dns_proxy_resolves_a_service_only_in_cluster2(guided: Lab) -> None:
    """Issue 12: with DNS capture (proxy.istio.io/config proxyMetadata) a cluster1 pod resolves a
    Service that exists only in cluster2 through its sidecar's DNS proxy (the lab's own hosts file
    does not list it) and reaches it by that name through the east-west gateway."""
    if guided.mode != "netns":
        pytest.skip("DNS capture needs the pod's own network namespace (netns mode)")
    kc = guided.kubeconfig
    clusters.kubectl(kc, "--context", "cluster2", "apply", "-f", "-", input_text=ONLY_IN_CLUSTER2)
    clusters.kubectl(kc, "--context", "cluster1", "apply", "-f", "-", input_text=DNS_CLIENT)
    try:
        vip = json.loads(
            guided.kubectl("cluster2", "-n", "sample", "get", "svc", "only2", "-o", "json").stdout
        )["spec"]["clusterIP"]
        # without the DNS proxy the name does not resolve in cluster1
        plain = guided.in_pod(
            guided.pod("cluster1", "sample", "sleep"), "sleep", ["getent", "hosts", "only2.sample"]
        )
        assert plain.returncode != 0, plain.stdout

        def client_ready() -> bool:
            pod = json.loads(
                guided.kubectl("cluster1", "-n", "sample", "get", "pod", "dnsclient", "-o", "json").stdout
            )
            conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
            return conds.get("Ready") == "True"

        wait_until(client_ready, 90, interval=1, what="dnsclient ready")
        client = guided.pod("cluster1", "sample", "dnsclient")

        def resolved() -> str:
            done = guided.in_pod(client, "dnsclient", ["getent", "hosts", "only2.sample"])
            return done.stdout.split()[0] if done.returncode == 0 and done.stdout.split() else ""

        assert wait_until(resolved, 60, interval=1, what="only2.sample resolved") == vip
        curl = guided.in_pod(
            client, "dnsclient", ["curl", "-sS", "-m", "10", "http://only2.sample:5000/hello"]
        )
        assert curl.returncode == 0 and "Hello version: v2" in curl.stdout, curl.stdout + curl.stderr
    finally:
        guided.kubectl("cluster1", "-n", "sample", "delete", "pod", "dnsclient", "--wait=false", check=False)
        guided.kubectl("cluster2", "-n", "sample", "delete", "svc", "only2", check=False)
