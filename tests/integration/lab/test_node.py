"""The node runtime turns Istio's sample manifests, applied with the real kubectl, into running
processes behind Services, and handles the Pod lifecycle as a kubelet would."""

from __future__ import annotations

import base64
import http.client
import json
from pathlib import Path
from typing import Any

import yaml

from meshplane.runtime import resolve
from tests.support import labnode, wait
from tests.support.labnode import ROOT, LabNode, alive, dump, ready

SAMPLES = ROOT / "samples"


def http_get(ip: str, port: int, path: str, host: str = "") -> tuple[int, str]:
    conn = http.client.HTTPConnection(ip, port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host or f"{ip}:{port}"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def slice_endpoints(node: LabNode, ns: str, service: str) -> list[dict[str, Any]]:
    slices = node.get("endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={service}")["items"]
    return [ep for s in slices for ep in s.get("endpoints") or []]


def test_samples_become_processes_behind_the_service(node: LabNode, ns: str) -> None:
    hello = str(SAMPLES / "helloworld" / "helloworld.yaml")
    node.kubectl("apply", "-f", hello, "-l", "service=helloworld", "-n", ns)
    node.kubectl("apply", "-f", hello, "-l", "version=v1", "-n", ns)
    node.kubectl("apply", "-f", str(SAMPLES / "curl" / "curl.yaml"), "-n", ns)
    node.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-n", ns, "--timeout=60s")

    deploy = node.get("deployment", "helloworld-v1", "-n", ns)
    assert deploy["status"]["readyReplicas"] == 1 and deploy["status"]["availableReplicas"] == 1
    (rs,) = node.get("replicasets", "-n", ns, "-l", "app=helloworld")["items"]
    template_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"helloworld-v1-{template_hash}"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]
    (pod,) = node.pods(ns, "app=helloworld")
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    assert name.startswith(f"helloworld-v1-{template_hash}-") and ready(pod)
    assert ip.startswith(f"127.{node.base}.1.") and pod["status"]["hostIP"] == f"127.{node.base}.1.1"
    assert pod["spec"]["nodeName"] == "cluster1-node"
    assert node.get("node", "cluster1-node")["metadata"]["labels"]["topology.kubernetes.io/zone"] == "zone-a"

    eps = wait.wait_until(lambda: slice_endpoints(node, ns, "helloworld"), what="helloworld endpoints")
    assert eps == [
        {
            "addresses": [ip],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": {"kind": "Pod", "namespace": ns, "name": name, "uid": pod["metadata"]["uid"]},
            "nodeName": "cluster1-node",
            "zone": "zone-a",
        }
    ]
    (slice_,) = node.get("endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=helloworld")["items"]
    assert (
        slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
        == "endpointslice-controller.k8s.io"
    )
    assert slice_["ports"] == [{"name": "http", "port": 5000, "protocol": "TCP"}]

    # the pod's name resolves through the lab's hosts file, kube-proxy forwards the ClusterIP
    svc_ip = node.get("service", "helloworld", "-n", ns)["spec"]["clusterIP"]
    assert svc_ip.startswith(f"127.{node.base}.10.")
    table = resolve.parse_hosts(node.hosts.read_text())
    assert resolve.lookup("helloworld", table, namespace=ns) == svc_ip
    assert resolve.lookup(f"helloworld.{ns}", table) == svc_ip
    status, body = http_get(svc_ip, 5000, "/hello", host=f"helloworld.{ns}:5000")
    assert (status, body) == (200, f"Hello version: v1, instance: {name}\n")

    # what the kubelet handed the process: env contract and in-pod files under its root
    pid = node.pid(ns, name, "helloworld")
    assert alive(pid)
    env = environ(pid)  # type: ignore[arg-type]
    root = Path(env["MESHPLANE_POD_ROOT"])
    assert root == node.pod_dir(ns, name) / "c" / "helloworld"
    assert env["HOSTNAME"] == name and env["POD_NAMESPACE"] == ns and env["SERVICE_VERSION"] == "v1"
    assert env["MESHPLANE_LISTEN_ADDRESS"] == ip  # no sidecar: the app owns the pod IP
    assert (
        env["MESHPLANE_LOCALHOST"]
        == env["ISTIO_META_MESHPLANE_LOCALHOST"]
        == f"127.{node.base + 1}.1.{ip.rsplit('.', 1)[1]}"
    )
    assert Path(env["MESHPLANE_HOSTS_FILE"]) == node.hosts
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert int(env["KUBERNETES_SERVICE_PORT"]) == node.cluster.cluster.port
    sa = root / "var/run/secrets/kubernetes.io/serviceaccount"
    assert (sa / "namespace").read_text() == ns
    assert (sa / "ca.crt").read_bytes() == node.cluster.cluster.ca_pem
    claims = json.loads(base64.urlsafe_b64decode((sa / "token").read_text().split(".")[1] + "=="))
    assert claims["kubernetes.io"]["pod"] == {"name": name, "uid": pod["metadata"]["uid"]}
    assert (root / "etc/hosts").resolve() == node.hosts.resolve()


def test_loadbalancer_service_gets_a_lab_address_and_forwards(node: LabNode, ns: str) -> None:
    node.kubectl("apply", "-f", str(SAMPLES / "helloworld" / "helloworld.yaml"), "-l", "version=v2", "-n", ns)
    node.apply(
        """
apiVersion: v1
kind: Service
metadata: {name: hello-lb}
spec:
  type: LoadBalancer
  selector: {app: helloworld}
  ports: [{name: http, port: 8080, targetPort: 5000}]
""",
        ns,
    )

    def lb_ip() -> str | None:
        ing = (
            (node.get("service", "hello-lb", "-n", ns).get("status") or {})
            .get("loadBalancer", {})
            .get("ingress")
        )
        return ing[0]["ip"] if ing else None

    ip = wait.wait_until(lb_ip, timeout=20, what="LoadBalancer address")
    assert ip.startswith(node.lb_prefix)
    assert (node.dir.parent / "lb-claims" / ip).read_text().strip() == f"cluster1/{ns}/hello-lb"
    node.kubectl("wait", "--for=condition=Available", "deployment/helloworld-v2", "-n", ns, "--timeout=60s")
    (pod,) = node.pods(ns, "app=helloworld")

    def answer() -> str | None:
        try:
            return http_get(ip, 8080, "/hello")[1]
        except OSError:
            return None

    assert wait.wait_until(answer, timeout=20, what="LB answer") == (
        f"Hello version: v2, instance: {pod['metadata']['name']}\n"
    )
    node.kubectl("delete", "service", "hello-lb", "-n", ns)
    wait.wait_until(
        lambda: not (node.dir.parent / "lb-claims" / ip).exists(), timeout=20, what="LB address released"
    )


def test_unknown_image_is_a_clear_pod_status_and_the_node_keeps_working(node: LabNode, ns: str) -> None:
    node.apply(
        """
apiVersion: v1
kind: Pod
metadata: {name: mystery}
spec:
  containers: [{name: app, image: "quay.io/example/not-in-the-lab:1.2"}]
""",
        ns,
    )

    def waiting() -> dict[str, Any] | None:
        cs = (node.get("pod", "mystery", "-n", ns).get("status") or {}).get("containerStatuses") or []
        w = cs[0]["state"].get("waiting") if cs else None
        return w if w and w.get("reason") in ("ErrImagePull", "ImagePullBackOff") else None

    w = wait.wait_until(waiting, timeout=20, what="image pull error")
    assert "quay.io/example/not-in-the-lab:1.2" in w["message"] and "image table" in w["message"]
    pod = node.get("pod", "mystery", "-n", ns)
    assert pod["status"]["phase"] == "Pending" and not ready(pod)
    node.kubectl("apply", "-f", str(SAMPLES / "curl" / "curl.yaml"), "-n", ns)
    node.kubectl("wait", "--for=condition=Available", "deployment/curl", "-n", ns, "--timeout=60s")
    assert node.proc.poll() is None


def test_crashing_container_restarts_with_backoff(node: LabNode, ns: str) -> None:
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

    def status() -> dict[str, Any]:
        return node.get("pod", "crasher", "-n", ns)["status"]["containerStatuses"][0]

    cs = wait.wait_until(
        lambda: (s := status())["restartCount"] >= 2 and "waiting" in s["state"] and s,
        timeout=40,
        what="restarts",
    )
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 2
    # the delay doubles: 1s, 2s, 4s …
    assert "back-off 4s" in cs["state"]["waiting"]["message"], cs
    # each instance's output is kept: the last one and the one before (kubectl logs [--previous])
    assert "invalid PORT" in node.kubectl("logs", "crasher", "-n", ns).stdout
    assert "invalid PORT" in node.kubectl("logs", "crasher", "-n", ns, "--previous").stdout


def test_deleted_pod_turns_terminating_before_its_process_exits_and_is_replaced(
    node: LabNode, ns: str
) -> None:
    hello = str(SAMPLES / "helloworld" / "helloworld.yaml")
    node.kubectl("apply", "-f", hello, "-l", "service=helloworld", "-n", ns)
    node.kubectl("apply", "-f", hello, "-l", "version=v1", "-n", ns)
    node.kubectl("wait", "--for=condition=Available", "deployment/helloworld-v1", "-n", ns, "--timeout=60s")
    (pod,) = node.pods(ns, "app=helloworld")
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    pid = node.pid(ns, name, "helloworld")
    assert alive(pid)
    wait.wait_until(lambda: slice_endpoints(node, ns, "helloworld"), what="endpoint")
    node.kubectl("delete", "pod", name, "-n", ns, "--wait=false")

    def terminating() -> dict[str, Any] | None:
        # terminating first keeps `serving` as the pod's Ready condition (Kubernetes' semantics) until
        # the kubelet's not-ready status lands; the state the kubelet waits for is both
        for ep in slice_endpoints(node, ns, "helloworld"):
            c = ep["conditions"]
            if ep["targetRef"]["uid"] == uid and c["terminating"] and not c["serving"]:
                return ep
        return None

    ep = wait.wait_until(terminating, timeout=10, what="terminating endpoint")
    process_alive_then = alive(pid)
    assert ep["conditions"] == {"ready": False, "serving": False, "terminating": True}
    assert process_alive_then, "the process exited before its endpoint was published as terminating"
    wait.wait_until(lambda: not alive(pid), timeout=20, what="process exit")
    wait.wait_until(
        lambda: all(p["metadata"]["uid"] != uid for p in node.pods(ns)), timeout=20, what="pod gone"
    )
    wait.wait_until(
        lambda: [p for p in node.pods(ns, "app=helloworld") if ready(p)], timeout=30, what="replacement ready"
    )
    (new,) = node.pods(ns, "app=helloworld")
    assert new["metadata"]["name"] != name and new["status"]["podIP"] != pod["status"]["podIP"]
    eps = wait.wait_until(
        lambda: [e for e in slice_endpoints(node, ns, "helloworld") if e["conditions"]["ready"]] or None,
        what="new endpoint",
    )
    assert [e["targetRef"]["name"] for e in eps] == [new["metadata"]["name"]]
    wait.wait_until(
        lambda: not (node.pod_dir(ns, name) / "volumes").exists(), timeout=10, what="volumes removed"
    )


def test_init_containers_run_in_order_and_traffic_capture_is_skipped(node: LabNode, ns: str) -> None:
    node.apply(
        """
apiVersion: v1
kind: Pod
metadata: {name: inits}
spec:
  initContainers:
  - name: istio-init
    image: docker.io/istio/proxyv2:1.24.0
    args: [istio-iptables, -p, "15001", -z, "15006", -u, "1337", -m, REDIRECT, -i, "*"]
  - name: setup
    image: docker.io/meshplane/pilot:0.1.0
    args: [version]
  containers:
  - name: app
    image: docker.io/istio/examples-helloworld-v2
""",
        ns,
    )
    wait.wait_until(lambda: ready(node.get("pod", "inits", "-n", ns)), timeout=40, what=dump(node, ns))
    statuses = {c["name"]: c for c in node.get("pod", "inits", "-n", ns)["status"]["initContainerStatuses"]}
    skipped = statuses["istio-init"]["state"]["terminated"]
    assert skipped["exitCode"] == 0 and "traffic capture" in skipped["message"]
    assert statuses["setup"]["state"]["terminated"]["reason"] == "Completed"
    logs = node.pod_dir(ns, "inits") / "logs"
    assert not (logs / "istio-init.log").exists()
    assert (logs / "setup.log").read_text().strip().endswith("0.1.0")


def test_env_and_volumes_from_configmaps_secrets_and_the_downward_api(node: LabNode, ns: str) -> None:
    node.apply(
        """
apiVersion: v1
kind: Pod
metadata: {name: config, labels: {app: config, tier: lab}}
spec:
  containers:
  - name: app
    image: docker.io/curlimages/curl:8.16.0
    command: [/bin/sleep, infinity]
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: settings, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: TIER, valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}}
    - {name: MESSAGE, value: "$(GREETING) from $(MY_IP)"}
    volumeMounts:
    - {name: settings, mountPath: /etc/settings}
    - {name: info, mountPath: /etc/podinfo}
  volumes:
  - {name: settings, configMap: {name: settings}}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
""",
        ns,
    )

    def creating() -> str | None:
        cs = (node.get("pod", "config", "-n", ns).get("status") or {}).get("containerStatuses") or []
        w = cs[0]["state"].get("waiting") if cs else None
        return w.get("message") if w and "settings" in w.get("message", "") else None

    assert 'configmap "settings" not found' in wait.wait_until(
        creating, timeout=20, what="waiting for ConfigMap"
    )
    node.kubectl("create", "configmap", "settings", "-n", ns, "--from-literal=greeting=hello")
    node.kubectl("create", "secret", "generic", "creds", "-n", ns, "--from-literal=password=s3cret")
    wait.wait_until(lambda: ready(node.get("pod", "config", "-n", ns)), timeout=30, what=dump(node, ns))
    pod = node.get("pod", "config", "-n", ns)
    env = environ(node.pid(ns, "config", "app"))  # type: ignore[arg-type]
    ip = pod["status"]["podIP"]
    assert (env["GREETING"], env["PASSWORD"], env["MY_IP"], env["TIER"]) == ("hello", "s3cret", ip, "lab")
    assert env["MESSAGE"] == f"hello from {ip}"
    root = Path(env["MESHPLANE_POD_ROOT"])
    assert (root / "etc/settings/greeting").read_text() == "hello"
    assert (root / "etc/podinfo/labels").read_text() == 'app="config"\ntier="lab"'
    node.apply(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "settings"},
                "data": {"greeting": "bonjour"},
            }
        ),
        ns,
    )
    wait.wait_until(
        lambda: (root / "etc/settings/greeting").read_text() == "bonjour", timeout=20, what="update"
    )


def test_node_shutdown_stops_every_process(tmp_path: Path) -> None:
    from tests.support import clusters

    base = labnode.address_base()
    c = clusters.ThreadedCluster(name="c", service_cidr=f"127.{base}.10.0/24").start()
    try:
        kubeconfig = c.write_kubeconfig(tmp_path / "kubeconfig")
        proc, log = labnode.start_node(kubeconfig, tmp_path / "node", base, "c")
        n = LabNode(c, kubeconfig, tmp_path / "node", base, proc, log)
        try:
            n.kubectl("create", "namespace", "s")
            n.kubectl("apply", "-f", str(SAMPLES / "helloworld" / "helloworld.yaml"), "-n", "s")
            n.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-n", "s", "--timeout=60s")
            pids = [n.pid("s", p["metadata"]["name"], "helloworld") for p in n.pods("s")]
            assert len(pids) == 2 and all(alive(p) for p in pids)
            assert labnode.listening(f"127.{base}.")
        finally:
            labnode.stop(proc)
        assert proc.returncode == 0, log.read_text()[-2000:]
        assert not [p for p in pids if alive(p)]
        assert labnode.listening(f"127.{base}.") == []
    finally:
        c.close()


def test_scale_and_rolling_update(node: LabNode, ns: str) -> None:
    hello = str(SAMPLES / "helloworld" / "helloworld.yaml")
    node.kubectl("apply", "-f", hello, "-l", "service=helloworld", "-n", ns)
    node.kubectl("apply", "-f", hello, "-l", "version=v1", "-n", ns)
    # (`kubectl scale` needs the deployments/scale subresource, which the dev cluster does not serve)
    node.kubectl(
        "patch", "deployment/helloworld-v1", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":2}}'
    )
    node.kubectl("rollout", "status", "deployment/helloworld-v1", "-n", ns, "--timeout=60s")
    wait.wait_until(
        lambda: len([e for e in slice_endpoints(node, ns, "helloworld") if e["conditions"]["ready"]]) == 2,
        timeout=20,
        what="two ready endpoints",
    )
    (old_rs,) = node.get("replicasets", "-n", ns)["items"]
    node.kubectl("set", "env", "deployment/helloworld-v1", "GREETING=hi", "-n", ns)
    node.kubectl("rollout", "status", "deployment/helloworld-v1", "-n", ns, "--timeout=90s")
    rss = {r["metadata"]["name"]: r for r in node.get("replicasets", "-n", ns)["items"]}
    assert len(rss) == 2 and rss[old_rs["metadata"]["name"]]["spec"]["replicas"] == 0
    (new_rs,) = [r for n, r in rss.items() if n != old_rs["metadata"]["name"]]
    assert new_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    pods = wait.wait_until(
        lambda: (ps := node.pods(ns, "app=helloworld")) and len(ps) == 2 and all(ready(p) for p in ps) and ps,
        timeout=30,
        what="new pods",
    )
    for p in pods:
        assert (
            p["metadata"]["labels"]["pod-template-hash"] == new_rs["metadata"]["labels"]["pod-template-hash"]
        )
        assert environ(node.pid(ns, p["metadata"]["name"], "helloworld"))["GREETING"] == "hi"  # type: ignore[arg-type]
    deploy = node.get("deployment", "helloworld-v1", "-n", ns)["status"]
    assert (deploy["replicas"], deploy["updatedReplicas"], deploy["availableReplicas"]) == (2, 2, 2)


def test_readiness_probes(node: LabNode, ns: str) -> None:
    def probed(name: str, probe: str) -> str:
        return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: app
    image: docker.io/istio/examples-helloworld-v1
    ports: [{{name: http, containerPort: 5000}}]
    readinessProbe: {probe}
---
"""

    node.apply(
        probed("http-ok", "{httpGet: {path: /health, port: http}, periodSeconds: 1}")
        + probed("http-404", "{httpGet: {path: /nope, port: 5000}, periodSeconds: 1}")
        + probed("tcp-ok", "{tcpSocket: {port: 5000}, periodSeconds: 1}")
        + probed("exec", "{exec: {command: [cat, /tmp/healthy]}}"),
        ns,
    )
    for name in ("http-ok", "tcp-ok"):
        wait.wait_until(lambda name=name: ready(node.get("pod", name, "-n", ns)), timeout=30, what=name)

    def condition(name: str) -> dict[str, Any] | None:
        pod = node.get("pod", name, "-n", ns)
        cs = (pod.get("status") or {}).get("containerStatuses") or []
        if not cs or not cs[0].get("started"):
            return None
        conds = {c["type"]: c for c in pod["status"]["conditions"]}
        return conds["Ready"] if "message" in conds["Ready"] else None

    def answered_404() -> dict[str, Any] | None:
        # before the app listens the probe fails with a connection error; then with the 404
        c = condition("http-404")
        return c if c is not None and "statuscode: 404" in c["message"] else None

    failing = wait.wait_until(answered_404, timeout=30, what="http-404 condition")
    assert failing["status"] == "False"
    unsupported = wait.wait_until(lambda: condition("exec"), timeout=30, what="exec condition")
    assert (
        unsupported["status"] == "False" and "uses exec, which the lab does not run" in unsupported["message"]
    )
