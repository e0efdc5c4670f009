"""pods/eviction (policy/v1 Eviction) against PodDisruptionBudgets, through the real kubectl
(`kubectl drain`, which sends the Eviction as protobuf, and `kubectl create --raw`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.support import wait
from tests.support.clusters import kubectl, kubectl_json

NODE = "evict-node"


def _pod(ns: str, name: str, node: str = NODE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1.36"}]},
    }


def _running(kc: Path, ns: str, name: str, ready: bool = True) -> None:
    status = {
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
    }
    kubectl(
        kc, "patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )


def _pdb(kc: Path, ns: str, **spec: Any) -> None:
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }
    kubectl(kc, "apply", "-f", "-", input_text=yaml.safe_dump(pdb))


def _status(kc: Path, ns: str, **want: int) -> dict[str, Any]:
    def current() -> dict[str, Any] | None:
        pdb = kubectl_json(kc, "get", "pdb", "web", "-n", ns)
        st: dict[str, Any] = pdb.get("status") or {}
        ok = st.get("observedGeneration") == pdb["metadata"]["generation"]
        return st if ok and all(st.get(k) == v for k, v in want.items()) else None

    return wait.wait_until(current, timeout=10, what=f"pdb status {want}")


def _evict(kc: Path, ns: str, name: str, body_name: str | None = None) -> Any:
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": body_name or name, "namespace": ns},
    }
    return kubectl(
        kc, "create", "--raw", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", "-f", "-",
        input_text=json.dumps(body), check=False,
    )  # fmt: skip


def _gone_or_terminating(kc: Path, ns: str, name: str) -> bool:
    got = kubectl(kc, "get", "pod", name, "-n", ns, "-o", "json", check=False)
    return got.returncode != 0 or bool(json.loads(got.stdout)["metadata"].get("deletionTimestamp"))


def test_a_budget_refuses_evictions_with_429_and_allows_what_it_can(kubeconfig_path: Path, ns: str) -> None:
    kc = kubeconfig_path
    kubectl(kc, "apply", "-f", "-", input_text=yaml.safe_dump_all([_pod(ns, "web-1"), _pod(ns, "web-2")]))
    for name in ("web-1", "web-2"):
        _running(kc, ns, name)
    _pdb(kc, ns, minAvailable=2)
    st = _status(kc, ns, currentHealthy=2, desiredHealthy=2, expectedPods=2, disruptionsAllowed=0)
    assert st["conditions"][0]["reason"] == "InsufficientPods"
    refused = _evict(kc, ns, "web-1")
    assert refused.returncode == 1
    assert "Cannot evict pod as it would violate the pod's disruption budget." in refused.stderr
    assert not _gone_or_terminating(kc, ns, "web-1")
    raw = kubectl(kc, "get", "--raw", f"/api/v1/namespaces/{ns}/pods/web-1", check=False)
    assert raw.returncode == 0
    # one disruption allowed: one eviction passes, the next is refused naming the budget's numbers
    _pdb(kc, ns, minAvailable=1)
    _status(kc, ns, disruptionsAllowed=1)
    ok = _evict(kc, ns, "web-1")
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "Success", ok.stderr
    wait.wait_until(lambda: _gone_or_terminating(kc, ns, "web-1"), timeout=10, what="web-1 evicted")
    _status(kc, ns, disruptionsAllowed=0)
    again = _evict(kc, ns, "web-2")
    assert again.returncode == 1 and "Cannot evict pod" in again.stderr
    assert not _gone_or_terminating(kc, ns, "web-2")


def test_kubectl_drain_evicts_through_the_budget(kubeconfig_path: Path, ns: str) -> None:
    kc = kubeconfig_path
    node = f"{ns}-node"
    kubectl(
        kc,
        "apply",
        "-f",
        "-",
        input_text=yaml.safe_dump({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}),
    )
    kubectl(kc, "apply", "-f", "-", input_text=yaml.safe_dump_all([_pod(ns, "a", node), _pod(ns, "b", node)]))
    for name in ("a", "b"):
        _running(kc, ns, name)
    _pdb(kc, ns, maxUnavailable=0)  # bare pods: nothing expected, nothing may go
    _status(kc, ns, disruptionsAllowed=0)
    blocked = kubectl(kc, "drain", node, "--pod-selector=app=web", "--force", "--timeout=3s", check=False)
    assert (
        blocked.returncode == 1
        and "Cannot evict pod as it would violate the pod's disruption budget" in blocked.stderr
    )
    _pdb(kc, ns, minAvailable=0)
    _status(kc, ns, disruptionsAllowed=2)
    drained = kubectl(
        kc,
        "drain",
        node,
        "--pod-selector=app=web",
        "--force",
        "--grace-period=0",
        "--timeout=20s",
        check=False,
    )  # no kubelet here: grace 0 deletes at once
    assert drained.returncode == 0, drained.stderr
    assert "pod/a evicted" in drained.stdout and "pod/b evicted" in drained.stdout


def test_pending_and_unready_pods_and_refusals(kubeconfig_path: Path, ns: str) -> None:
    kc = kubeconfig_path
    kubectl(
        kc, "apply", "-f", "-", input_text=yaml.safe_dump_all([_pod(ns, "p"), _pod(ns, "u"), _pod(ns, "r")])
    )
    _running(kc, ns, "u", ready=False)
    _running(kc, ns, "r")
    _pdb(kc, ns, minAvailable=5)
    _status(kc, ns, disruptionsAllowed=0)
    # a Pending pod has caused no disruption: deleted whatever the budget says
    assert _evict(kc, ns, "p").returncode == 0
    # an unready pod under an unmet budget (IfHealthyBudget): refused; AlwaysAllow lets it go
    assert _evict(kc, ns, "u").returncode == 1
    _pdb(kc, ns, minAvailable=5, unhealthyPodEvictionPolicy="AlwaysAllow")
    _status(kc, ns, disruptionsAllowed=0)
    assert _evict(kc, ns, "u").returncode == 0
    mismatch = _evict(kc, ns, "r", body_name="other")
    assert (
        mismatch.returncode == 1 and "name in URL does not match name in Eviction object" in mismatch.stderr
    )
    assert 'pods "ghost" not found' in _evict(kc, ns, "ghost").stderr
    # RBAC: creating an eviction is `create` on pods/eviction
    kubectl(kc, "create", "serviceaccount", "ops", "-n", ns)
    kubectl(kc, "create", "role", "pods", "--verb=get,list,delete", "--resource=pods", "-n", ns)
    kubectl(kc, "create", "rolebinding", "ops", "--role=pods", f"--serviceaccount={ns}:ops", "-n", ns)
    token = kubectl(kc, "create", "token", "ops", "-n", ns).stdout.strip()
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "r"}})
    denied = kubectl(
        kc, "--token", token, "create", "--raw", f"/api/v1/namespaces/{ns}/pods/r/eviction", "-f", "-",
        input_text=body, check=False,
    )  # fmt: skip
    assert f'cannot create resource "pods/eviction" in API group "" in the namespace "{ns}"' in denied.stderr
    # two budgets over one pod: refused, as kube-apiserver refuses it
    second = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web2", "namespace": ns},
        "spec": {"selector": {}, "minAvailable": 0},
    }
    kubectl(kc, "apply", "-f", "-", input_text=yaml.safe_dump(second))
    assert "more than one PodDisruptionBudget" in _evict(kc, ns, "r").stderr
    # discovery lists it as kube-apiserver does
    resources = json.loads(kubectl(kc, "get", "--raw", "/api/v1").stdout)["resources"]
    (ev,) = [r for r in resources if r["name"] == "pods/eviction"]
    assert (ev["group"], ev["version"], ev["kind"], ev["verbs"]) == ("policy", "v1", "Eviction", ["create"])
