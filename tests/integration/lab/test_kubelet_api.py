"""`kubectl logs` (pods/log) through the dev cluster's API server, proxied to the lab node's kubelet
API, and that API's own guard (a client certificate of the cluster's CA, named as the API server).
Loopback mode: exec is refused there with a message (netns-mode exec is in tests/e2e)."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import clusters, wait
from tests.support.labnode import LabNode, ready
from tests.support.wait import WaitTimeout

ROOT = clusters.ROOT
SAMPLES = ROOT / "samples"


def _hello(node: LabNode, ns: str) -> dict[str, Any]:
    hello = str(SAMPLES / "helloworld" / "helloworld.yaml")
    node.kubectl("apply", "-f", hello, "-l", "service=helloworld", "-n", ns)
    node.kubectl("apply", "-f", hello, "-l", "version=v1", "-n", ns)
    pod: dict[str, Any] = wait.wait_until(
        lambda: next((p for p in node.pods(ns, "app=helloworld") if ready(p)), None),
        timeout=60,
        what="a ready helloworld pod",
    )
    wait.wait_until(
        lambda: _answers(f"http://{pod['status']['podIP']}:5000/hello"), timeout=20, what="the app"
    )
    return pod


def _answers(url: str) -> bool:
    try:
        return bool(_get(url))
    except OSError:
        return False


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())


def _kubectl_env(node: LabNode) -> dict[str, str]:
    home = node.kubeconfig.parent / ".kubectl-home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": str(node.kubeconfig)}


def test_kubectl_logs_and_follow_show_the_containers_output(node: LabNode, ns: str) -> None:
    pod = _hello(node, ns)
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    # the app logs once it listens (a pod without a readiness probe is Ready before that)
    out = wait.wait_until(
        lambda: (o := node.kubectl("logs", name, "-n", ns).stdout) and "helloworld listening" in o and o,
        timeout=20,
        what="the app's first line",
    )
    assert "version=v1" in out
    # --timestamps prefixes each line with the RFC3339 time the runtime recorded
    stamped = node.kubectl("logs", name, "-n", ns, "--timestamps").stdout.splitlines()
    assert stamped and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", ln) for ln in stamped)
    # follow: a request the app logs after `kubectl logs -f` started arrives on its output
    follow = subprocess.Popen(
        [clusters.KUBECTL, "logs", "-f", name, "-n", ns, "--tail=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_kubectl_env(node),
    )
    seen: list[bytes] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(follow.stdout.readline, b"")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:

        def followed() -> bool:
            _get(f"http://{ip}:5000/hello")  # until one arrives after kubectl started following
            return any(b"GET /hello" in ln for ln in seen)

        try:
            wait.wait_until(followed, timeout=20)
        except WaitTimeout as e:
            raise AssertionError(f"followed lines {seen}") from e
    finally:
        follow.terminate()
        follow.wait(10)
    # tail and limit apply to what is logged
    _get(f"http://{ip}:5000/hello")
    last = node.kubectl("logs", name, "-n", ns, "--tail=1").stdout
    assert last.count("\n") == 1 and "GET /hello" in last
    assert len(node.kubectl("logs", name, "-n", ns, "--limit-bytes=7").stdout) == 7


def test_previous_log_of_a_restarted_container_and_refusals(node: LabNode, ns: str) -> None:
    node.apply(
        """
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - name: app
    image: docker.io/istio/examples-helloworld-v1
    env: [{name: PORT, value: not-a-port}]
""",
        ns,
    )
    wait.wait_until(
        lambda: node.get("pod", "crasher", "-n", ns)["status"]["containerStatuses"][0]["restartCount"] >= 1,
        timeout=40,
        what="a restart",
    )
    previous = node.kubectl("logs", "crasher", "-n", ns, "--previous").stdout
    assert "invalid PORT 'not-a-port'" in previous
    bad = node.kubectl("logs", "crasher", "-n", ns, "-c", "nope", check=False)
    assert bad.returncode == 1 and "container nope is not valid for pod crasher" in bad.stderr
    neg = node.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/pods/crasher/log?tailLines=-1", check=False)
    assert (
        neg.returncode == 1
        and "tailLines" in neg.stderr
        and "must be greater than or equal to 0" in neg.stderr
    )
    missing = node.kubectl("logs", "ghost", "-n", ns, check=False)
    assert 'pods "ghost" not found' in missing.stderr
    # exec needs the pod's own network namespace: loopback mode refuses it, naming why
    ex = node.kubectl("exec", "crasher", "-n", ns, "--", "true", check=False)
    assert ex.returncode == 1 and "loopback mode" in ex.stderr, ex.stderr


def test_pods_log_needs_its_rbac_permission(node: LabNode, ns: str) -> None:
    pod = _hello(node, ns)
    name = pod["metadata"]["name"]
    node.kubectl("create", "serviceaccount", "reader", "-n", ns)
    node.kubectl("create", "role", "pods-only", "--verb=get,list", "--resource=pods", "-n", ns)
    node.kubectl("create", "rolebinding", "r", "--role=pods-only", f"--serviceaccount={ns}:reader", "-n", ns)
    as_reader = ["--token", node.kubectl("create", "token", "reader", "-n", ns).stdout.strip()]
    node.kubectl("get", "pod", name, "-n", ns, *as_reader)
    refused = node.kubectl("logs", name, "-n", ns, *as_reader, check=False)
    assert refused.returncode == 1
    assert f'cannot get resource "pods/log" in API group "" in the namespace "{ns}"' in refused.stderr
    ex = node.kubectl("exec", name, "-n", ns, *as_reader, "--", "true", check=False)
    assert f'cannot create resource "pods/exec" in API group "" in the namespace "{ns}"' in ex.stderr
    node.kubectl("create", "role", "logs", "--verb=get", "--resource=pods/log", "-n", ns)
    node.kubectl("create", "rolebinding", "l", "--role=logs", f"--serviceaccount={ns}:reader", "-n", ns)
    wait.wait_until(
        lambda: "helloworld listening" in node.kubectl("logs", name, "-n", ns, *as_reader).stdout,
        timeout=20,
        what="logs as the reader",
    )


def _kubelet(node: LabNode) -> tuple[str, int]:
    status = node.get("node", "cluster1-node")["status"]
    address = next(a["address"] for a in status["addresses"] if a["type"] == "InternalIP")
    return address, int(status["daemonEndpoints"]["kubeletEndpoint"]["Port"])


def test_the_kubelet_api_refuses_callers_without_the_api_servers_certificate(
    node: LabNode, tmp_path: Path
) -> None:
    address, port = _kubelet(node)
    url = f"https://{address}:{port}/containerLogs/default/x/y"
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    # no client certificate: the TLS handshake fails (the server requires one)
    with pytest.raises((ssl.SSLError, OSError, urllib.error.URLError)):
        urllib.request.urlopen(url, context=insecure, timeout=5)
    # a certificate the cluster CA did not sign: refused as well
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-kubelet-client")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    insecure.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    with pytest.raises((ssl.SSLError, OSError, urllib.error.URLError)):
        urllib.request.urlopen(url, context=insecure, timeout=5)


def port_forward(
    node: LabNode, ns: str, pod: str, port: int
) -> tuple[subprocess.Popen[bytes], int, list[bytes]]:
    """`kubectl port-forward POD :PORT`; the local port it printed, and its output lines."""
    pf = subprocess.Popen(
        [clusters.KUBECTL, "port-forward", pod, "-n", ns, f":{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_kubectl_env(node),
    )
    lines: list[bytes] = []
    threading.Thread(target=lambda: lines.extend(iter(pf.stdout.readline, b"")), daemon=True).start()  # type: ignore[union-attr]
    local = wait.wait_until(
        lambda: next(
            (int(m.group(1)) for ln in lines if (m := re.search(rb"127\.0\.0\.1:(\d+) ->", ln))), None
        ),
        timeout=20,
        what="kubectl port-forward listening",
    )
    return pf, local, lines


def test_kubectl_port_forward_reaches_the_pods_port(node: LabNode, ns: str) -> None:
    pod = _hello(node, ns)
    name = pod["metadata"]["name"]
    pf, local, lines = port_forward(node, ns, name, 5000)
    try:
        for _ in range(3):  # one stream pair per connection, over one tunnel
            assert _get(f"http://127.0.0.1:{local}/hello").startswith("Hello version: v1, instance: " + name)
    finally:
        pf.terminate()
        pf.wait(10)
    # kubectl without its WebSocket tunnel sends a bare SPDY upgrade: refused, saying what is served
    spdy = subprocess.run(
        [clusters.KUBECTL, "port-forward", name, "-n", ns, ":5000"],
        capture_output=True,
        text=True,
        env={**_kubectl_env(node), "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"},
        timeout=30,
        check=False,
    )
    assert spdy.returncode == 1 and "not a bare SPDY/3.1 upgrade" in spdy.stderr, spdy.stderr
    # a port nothing listens on: the kubelet's error reaches kubectl on the error stream
    pf, local, lines = port_forward(node, ns, name, 5999)
    try:
        with pytest.raises(OSError):
            _get(f"http://127.0.0.1:{local}/")
        wait.wait_until(
            lambda: any(b"error forwarding port 5999 to pod" in ln for ln in lines),
            timeout=20,
            what="the forwarding error",
        )
    finally:
        pf.terminate()
        pf.wait(10)
