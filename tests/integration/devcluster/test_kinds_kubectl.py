"""Every built-in kind the dev cluster serves, through the real kubectl: create, get, list (a table),
watch (kubectl get -w), delete; and a 422 naming the field for an invalid object of each kind."""

from __future__ import annotations

import copy
import json
import os
import selectors
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshplane.devcluster.schema import resources
from tests.support import clusters
from tests.support.clusters import kubectl

POD_SPEC = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
TEMPLATE = {"metadata": {"labels": {"app": "s"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "s"}}

# (group, plural) -> (a valid object without metadata, the field an invalid one leaves out; "" means
# the invalid one has a bad metadata.name instead). Names: "sample" unless the kind needs its own.
SAMPLES: dict[tuple[str, str], tuple[dict[str, Any], str]] = {
    ("", "configmaps"): ({"data": {"a": "1"}}, ""),
    ("", "endpoints"): ({"subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}]}]}, ""),
    ("", "events"): (
        {"involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Tested", "message": "m"},
        "involvedObject",
    ),
    ("", "limitranges"): ({"spec": {"limits": [{"type": "Container"}]}}, "spec.limits"),
    ("", "namespaces"): ({}, ""),
    ("", "nodes"): ({}, ""),
    ("", "persistentvolumeclaims"): (
        {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        "",
    ),
    ("", "persistentvolumes"): (
        {
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/pv"},
            }
        },
        "",
    ),
    ("", "pods"): ({"spec": POD_SPEC}, "spec.containers"),
    ("", "podtemplates"): ({"template": TEMPLATE}, ""),
    ("", "replicationcontrollers"): (
        {"spec": {"replicas": 0, "selector": {"app": "s"}, "template": TEMPLATE}},
        "",
    ),
    ("", "resourcequotas"): ({"spec": {"hard": {"pods": "10"}}}, ""),
    ("", "secrets"): ({"stringData": {"a": "1"}}, ""),
    ("", "serviceaccounts"): ({}, ""),
    ("", "services"): ({"spec": {"ports": [{"port": 80}]}}, ""),
    ("apiregistration.k8s.io", "apiservices"): (
        {
            "spec": {
                "group": "tests.example.com",
                "version": "v1alpha1",
                "groupPriorityMinimum": 100,
                "versionPriority": 10,
                "service": {"namespace": "default", "name": "api"},
            }
        },
        "spec.groupPriorityMinimum",
    ),
    ("apps", "controllerrevisions"): ({"revision": 1, "data": {"a": 1}}, "revision"),
    ("apps", "daemonsets"): ({"spec": {"selector": SELECTOR, "template": TEMPLATE}}, "spec.selector"),
    ("apps", "deployments"): (
        {"spec": {"replicas": 0, "selector": SELECTOR, "template": TEMPLATE}},
        "spec.template",
    ),
    ("apps", "replicasets"): (
        {"spec": {"replicas": 0, "selector": SELECTOR, "template": TEMPLATE}},
        "spec.selector",
    ),
    ("apps", "statefulsets"): (
        {"spec": {"replicas": 0, "serviceName": "s", "selector": SELECTOR, "template": TEMPLATE}},
        "spec.serviceName",
    ),
    ("events.k8s.io", "events"): (
        {
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reason": "Tested",
            "action": "Test",
            "note": "a note",
            "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p"},
            "reportingController": "tests.example.com/t",
            "reportingInstance": "t-1",
        },
        "eventTime",
    ),
    ("autoscaling", "horizontalpodautoscalers"): (
        {
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "maxReplicas": 3,
            }
        },
        "spec.maxReplicas",
    ),
    ("batch", "cronjobs"): (
        {
            "spec": {
                "schedule": "*/5 * * * *",
                "jobTemplate": {"spec": {"template": {"spec": dict(POD_SPEC, restartPolicy="OnFailure")}}},
            }
        },
        "spec.schedule",
    ),
    ("batch", "jobs"): (
        {"spec": {"template": {"spec": dict(POD_SPEC, restartPolicy="Never")}}},
        "spec.template",
    ),
    ("certificates.k8s.io", "certificatesigningrequests"): (
        {
            "spec": {
                "request": "Y3Ny",
                "signerName": "tests.example.com/signer",
                "usages": ["digital signature"],
            }
        },
        "spec.signerName",
    ),
    ("networking.k8s.io", "ingressclasses"): ({"spec": {"controller": "tests.example.com/ingress"}}, ""),
    ("networking.k8s.io", "ingresses"): (
        {
            "spec": {
                "rules": [
                    {
                        "host": "a.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            }
        },
        "",
    ),
    ("networking.k8s.io", "networkpolicies"): ({"spec": {"podSelector": {}}}, "spec.podSelector"),
    ("policy", "poddisruptionbudgets"): ({"spec": {"minAvailable": 1, "selector": SELECTOR}}, ""),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (
        {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"}],
        },
        "roleRef",
    ),
    ("rbac.authorization.k8s.io", "clusterroles"): (
        {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        "rules.0.verbs",  # RBAC names are path segments: Not_Valid is a valid one
    ),
    ("rbac.authorization.k8s.io", "rolebindings"): (
        {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}},
        "roleRef",
    ),
    ("rbac.authorization.k8s.io", "roles"): (
        {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        "rules.0.verbs",
    ),
    ("storage.k8s.io", "csidrivers"): ({"spec": {}}, ""),
    ("storage.k8s.io", "csinodes"): ({"spec": {"drivers": []}}, "spec.drivers"),
    ("storage.k8s.io", "csistoragecapacities"): ({"storageClassName": "standard"}, "storageClassName"),
    ("storage.k8s.io", "storageclasses"): ({"provisioner": "tests.example.com/p"}, "provisioner"),
    ("storage.k8s.io", "volumeattachments"): (
        {
            "spec": {
                "attacher": "a.example.com",
                "nodeName": "node-1",
                "source": {"persistentVolumeName": "pv"},
            }
        },
        "spec.attacher",
    ),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): ({}, ""),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): (
        {"spec": {"validations": [{"expression": "true"}]}},
        "",
    ),
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"): (
        {"spec": {"policyName": "p", "validationActions": ["Deny"]}},
        "",
    ),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): ({}, ""),
    ("apiextensions.k8s.io", "customresourcedefinitions"): (
        {
            "spec": {
                "group": "kinds.tests.example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                    }
                ],
            }
        },
        "spec.group",
    ),
    ("scheduling.k8s.io", "priorityclasses"): ({"value": 1000}, "value"),
    ("coordination.k8s.io", "leases"): ({"spec": {"holderIdentity": "me"}}, ""),
    ("node.k8s.io", "runtimeclasses"): ({"handler": "runc"}, "handler"),
    ("discovery.k8s.io", "endpointslices"): (
        {"addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.1"]}]},
        "addressType",
    ),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"): (
        {"spec": {"priorityLevelConfiguration": {"name": "global-default"}}},
        "spec.priorityLevelConfiguration",
    ),
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"): (
        {"spec": {"type": "Limited", "limited": {}}},
        "spec.type",
    ),
}
# Kinds whose objects must carry a particular name.
NAMES = {
    "apiservices": "v1alpha1.tests.example.com",
    "customresourcedefinitions": "widgets.kinds.tests.example.com",
}
KINDS = [rt for rt in resources.builtin_types() if "create" in rt.verbs]


def test_every_builtin_kind_has_a_sample() -> None:
    assert {(rt.group, rt.plural) for rt in KINDS} == set(SAMPLES)


def _resource(rt: resources.ResourceType) -> str:
    """What kubectl is told: plural.version.group (exact, whatever else shares the plural)."""
    return f"{rt.plural}.{rt.version}.{rt.group}" if rt.group else f"{rt.plural}.{rt.version}."


def _object(rt: resources.ResourceType, name: str, ns: str) -> dict[str, Any]:
    body = copy.deepcopy(SAMPLES[(rt.group, rt.plural)][0])
    meta: dict[str, Any] = {"name": name}
    if rt.namespaced:
        meta["namespace"] = ns
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": meta, **body}


def _without(obj: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = out
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    del node[last]
    return out


def _field(path: str) -> str:
    """A dotted path as the API server names it in errors: rules[0].verbs."""
    return path.replace(".0.", "[0].")


class _Lines:
    """Lines a process prints, each waited for at most `timeout` seconds (never blocking longer)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def next(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.fd, selectors.EVENT_READ)
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"kubectl printed no line in {timeout}s (so far {self.buf!r})")
                if sel.select(timeout=left):
                    chunk = os.read(self.fd, 65536)
                    if not chunk:
                        raise AssertionError(f"kubectl exited (printed {self.buf!r})")
                    self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode().split()


def _watch(kubeconfig_path: Path, *args: str) -> subprocess.Popen[bytes]:
    home = kubeconfig_path.parent / ".kubectl-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(home), "KUBECONFIG": str(kubeconfig_path)}
    return subprocess.Popen(
        [clusters.KUBECTL, "get", *args, "-w", "--output-watch-events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


@pytest.mark.parametrize("rt", KINDS, ids=lambda rt: f"{rt.group or 'core'}/{rt.version}/{rt.plural}")
def test_kind_crud_watch_and_invalid(kubeconfig_path: Path, ns: str, rt: resources.ResourceType) -> None:
    name = NAMES.get(rt.plural) or ("sample" if rt.namespaced else clusters.unique("sample"))
    obj = _object(rt, name, ns)
    scope = ["-n", ns] if rt.namespaced else []
    res = _resource(rt)

    # invalid first: nothing is stored, and the error names the field
    missing = SAMPLES[(rt.group, rt.plural)][1]
    bad = _without(obj, missing) if missing else dict(obj, metadata=dict(obj["metadata"], name="Not_Valid"))
    out = kubectl(kubeconfig_path, "create", "-f", "-", input_text=yaml.safe_dump(bad), check=False)
    assert out.returncode == 1, out.stdout
    assert "is invalid" in out.stderr and _field(missing or "metadata.name") in out.stderr, out.stderr

    kubectl(kubeconfig_path, "create", "-f", "-", input_text=yaml.safe_dump(obj))
    got = json.loads(kubectl(kubeconfig_path, "get", res, name, *scope, "-o", "json").stdout)
    assert (got["apiVersion"], got["kind"], got["metadata"]["name"]) == (rt.api_version, rt.kind, name)
    table = kubectl(kubeconfig_path, "get", res, *scope).stdout.splitlines()
    named = (rt.group, rt.plural) != ("", "events")  # core events print LAST SEEN ... OBJECT instead
    if named:
        assert table[0].split()[0] == "NAME" and any(line.split()[0] == name for line in table[1:]), table
    else:
        assert table[0].split()[:2] == ["LAST", "SEEN"] and "pod/p" in table[1], table

    watcher = _watch(kubeconfig_path, res, name, *scope)
    try:
        lines = _Lines(watcher)
        header = lines.next(20)
        assert header[:2] == ["EVENT", "NAME" if named else "LAST"], header
        first = lines.next(20)  # the list kubectl starts its watch from
        assert first[0] == "ADDED" and (first[1] == name or not named), first
        kubectl(kubeconfig_path, "delete", res, name, *scope, "--wait=false")
        seen = [lines.next(20)]
        while seen[-1][0] != "DELETED":  # graceful deletion may modify it first
            assert seen[-1][0] == "MODIFIED", seen
            seen.append(lines.next(20))
        assert seen[-1][1] == name or not named
    finally:
        watcher.kill()
        watcher.wait()
    gone = kubectl(kubeconfig_path, "get", res, name, *scope, check=False)
    assert gone.returncode == 1 and "(NotFound)" in gone.stderr, gone.stderr


@pytest.mark.parametrize(
    ("args", "resource", "path", "expected"),
    [
        (
            ["job", "j", "--image=busybox:1.36"],
            "job/j",
            "{.spec.template.spec.containers[0].image}",
            "busybox:1.36",
        ),
        (
            ["cronjob", "cj", "--image=busybox:1.36", "--schedule=*/5 * * * *"],
            "cronjob/cj",
            "{.spec.schedule}",
            "*/5 * * * *",
        ),
        (
            ["ingress", "ing", "--rule=a.example.com/api*=web:80"],
            "ingress/ing",
            "{.spec.rules[0].host} {.spec.rules[0].http.paths[0].pathType} "
            "{.spec.rules[0].http.paths[0].backend.service.port.number}",
            "a.example.com Prefix 80",
        ),
        (
            ["poddisruptionbudget", "pdb", "--selector=app=s", "--min-available=1"],
            "pdb/pdb",
            "{.spec.minAvailable} {.spec.selector.matchLabels.app}",
            "1 s",
        ),
        (["quota", "q", "--hard=pods=3,cpu=2"], "quota/q", "{.spec.hard.pods} {.spec.hard.cpu}", "3 2"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_kubectl_create_generators_send_protobuf(
    kubeconfig_path: Path, ns: str, args: list[str], resource: str, path: str, expected: str
) -> None:
    """kubectl 1.32 POSTs these as protobuf; the dev cluster decodes every field it sends."""
    kubectl(kubeconfig_path, "create", *args, "-n", ns)
    got = kubectl(kubeconfig_path, "get", resource, "-n", ns, "-o", f"jsonpath={path}").stdout
    assert got == expected


def test_kubectl_create_priorityclass(kubeconfig_path: Path) -> None:
    name = clusters.unique("pc")
    kubectl(kubeconfig_path, "create", "priorityclass", name, "--value=1000", "--description=tests")
    got = kubectl(
        kubeconfig_path, "get", "pc", name, "-o", "jsonpath={.value} {.description} {.preemptionPolicy}"
    ).stdout
    assert got == "1000 tests PreemptLowerPriority"
    kubectl(kubeconfig_path, "delete", "pc", name)


def hpa(version: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    return {
        "apiVersion": f"autoscaling/{version}",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"scaleTargetRef": target, "minReplicas": 1, "maxReplicas": 4, **spec},
    }


def test_hpa_served_as_v1_and_v2(kubeconfig_path: Path, ns: str) -> None:
    """One stored HorizontalPodAutoscaler, read and written in both versions, as kube-apiserver
    converts them: v1's CPU target is v2's CPU utilization metric; v2-only metrics survive a v1
    read-modify-write."""
    kubectl(
        kubeconfig_path,
        "apply",
        "-f",
        "-",
        input_text=yaml.safe_dump(hpa("v1", ns, {"targetCPUUtilizationPercentage": 50})),
    )
    v2 = json.loads(
        kubectl(
            kubeconfig_path, "get", "horizontalpodautoscalers.v2.autoscaling", "web", "-n", ns, "-o", "json"
        ).stdout
    )
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
        }
    ]
    memory = {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}},
    }
    v2["spec"]["metrics"].append(memory)
    kubectl(kubeconfig_path, "replace", "-f", "-", input_text=json.dumps(v2))
    v1 = json.loads(
        kubectl(
            kubeconfig_path, "get", "horizontalpodautoscalers.v1.autoscaling", "web", "-n", ns, "-o", "json"
        ).stdout
    )
    assert v1["apiVersion"] == "autoscaling/v1" and v1["spec"]["targetCPUUtilizationPercentage"] == 50
    assert "metrics" not in v1["spec"]
    kubectl(
        kubeconfig_path,
        "patch",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"maxReplicas":7,"targetCPUUtilizationPercentage":60}}',
    )
    v2 = json.loads(
        kubectl(
            kubeconfig_path, "get", "horizontalpodautoscalers.v2.autoscaling", "web", "-n", ns, "-o", "json"
        ).stdout
    )
    assert v2["spec"]["maxReplicas"] == 7
    assert [m["resource"]["name"] for m in v2["spec"]["metrics"]] == ["cpu", "memory"]
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert v2["spec"]["metrics"][1] == memory
    assert not any(k.startswith("autoscaling.alpha") for k in v2["metadata"].get("annotations", {}))


def test_kubectl_autoscale(kubeconfig_path: Path, ns: str) -> None:
    """kubectl 1.32 POSTs an autoscaling/v1 HorizontalPodAutoscaler as protobuf."""
    kubectl(kubeconfig_path, "create", "deployment", "web", "--image=busybox:1.36", "-n", ns)
    kubectl(kubeconfig_path, "autoscale", "deployment", "web", "--max=3", "--cpu-percent=70", "-n", ns)
    v2 = json.loads(kubectl(kubeconfig_path, "get", "hpa", "web", "-n", ns, "-o", "json").stdout)
    assert v2["spec"]["maxReplicas"] == 3 and v2["spec"]["scaleTargetRef"]["name"] == "web"
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_csr_names_its_requester(kubeconfig_path: Path) -> None:
    name = clusters.unique("csr")
    obj = _object(next(rt for rt in KINDS if rt.plural == "certificatesigningrequests"), name, "")
    obj["spec"]["username"] = "someone-else"
    kubectl(kubeconfig_path, "create", "-f", "-", input_text=yaml.safe_dump(obj))
    got = json.loads(kubectl(kubeconfig_path, "get", "csr", name, "-o", "json").stdout)
    me = json.loads(kubectl(kubeconfig_path, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert got["spec"]["username"] == me["username"] != "someone-else"
    assert got["spec"]["groups"] == me["groups"]
    kubectl(kubeconfig_path, "delete", "csr", name)
