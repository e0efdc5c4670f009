"""Server-side apply with field ownership, driven by the real kubectl (1.32)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap
from lightkube.types import PatchType

from tests.support.clusters import kubectl

CM = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
{data}
"""

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
{containers}
"""


def _apply(kc: Path, manifest: str, *flags: str, check: bool = True) -> Any:
    return kubectl(kc, "apply", "--server-side", *flags, "-f", "-", input_text=manifest, check=check)


def _cm(ns: str, **data: str) -> str:
    return CM.format(ns=ns, data="\n".join(f"  {k}: {v!r}" for k, v in data.items()))


def _get(kc: Path, ns: str, what: str) -> Any:
    out = kubectl(kc, "get", what, "-n", ns, "-o", "yaml", "--show-managed-fields").stdout
    return yaml.safe_load(out)


def _entries(obj: Any) -> dict[str, Any]:
    return {e["manager"]: e for e in obj["metadata"].get("managedFields") or []}


def test_second_manager_conflicts_then_forces_ownership(kubeconfig_path: Path, ns: str) -> None:
    _apply(kubeconfig_path, _cm(ns, key="one", other="x"), "--field-manager", "a")
    obj = _get(kubeconfig_path, ns, "configmap/settings")
    a = _entries(obj)["a"]
    assert a["operation"] == "Apply" and a["apiVersion"] == "v1" and a["fieldsType"] == "FieldsV1"
    assert a["time"].endswith("Z")
    assert a["fieldsV1"] == {"f:data": {"f:key": {}, "f:other": {}}}

    refused = _apply(kubeconfig_path, _cm(ns, key="two"), "--field-manager", "b", check=False)
    assert refused.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "a": .data.key' in refused.stderr
    assert _get(kubeconfig_path, ns, "configmap/settings")["data"]["key"] == "one"

    # the same value is no conflict: both managers own it
    _apply(kubeconfig_path, _cm(ns, other="x"), "--field-manager", "b")
    shared = _entries(_get(kubeconfig_path, ns, "configmap/settings"))
    assert "f:other" in shared["a"]["fieldsV1"]["f:data"] and "f:other" in shared["b"]["fieldsV1"]["f:data"]

    _apply(kubeconfig_path, _cm(ns, key="two", other="x"), "--field-manager", "b", "--force-conflicts")
    obj = _get(kubeconfig_path, ns, "configmap/settings")
    assert obj["data"]["key"] == "two"
    owners = _entries(obj)
    assert "f:key" in owners["b"]["fieldsV1"]["f:data"]
    assert "f:key" not in owners["a"]["fieldsV1"]["f:data"]


def test_dropped_field_removed_unless_someone_else_owns_it(kubeconfig_path: Path, ns: str) -> None:
    _apply(kubeconfig_path, _cm(ns, keep="1", solo="2", both="3"), "--field-manager", "a")
    _apply(kubeconfig_path, _cm(ns, both="3"), "--field-manager", "b")
    _apply(kubeconfig_path, _cm(ns, keep="1"), "--field-manager", "a")
    data = _get(kubeconfig_path, ns, "configmap/settings")["data"]
    assert data == {"keep": "1", "both": "3"}  # solo: a alone owned it; both: b still applies it


def test_update_managers_conflict_with_apply(kubeconfig_path: Path, ns: str) -> None:
    # client-side apply records an Update entry for kubectl-client-side-apply
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=_cm(ns, key="one"))
    owners = _entries(_get(kubeconfig_path, ns, "configmap/settings"))
    csa = owners["kubectl-client-side-apply"]
    assert csa["operation"] == "Update"
    assert "f:key" in csa["fieldsV1"]["f:data"]
    refused = _apply(kubeconfig_path, _cm(ns, key="two"), "--field-manager", "b", check=False)
    assert 'conflict with "kubectl-client-side-apply" using v1: .data.key' in refused.stderr


def test_client_side_apply_then_server_side_with_default_manager(kubeconfig_path: Path, ns: str) -> None:
    # kubectl 1.32 moves kubectl-client-side-apply's fields to its own "kubectl" apply manager
    # (csaupgrade: a JSON patch of metadata.managedFields), so this is no conflict
    kubectl(kubeconfig_path, "apply", "-f", "-", input_text=_cm(ns, key="one"))
    _apply(kubeconfig_path, _cm(ns, key="two"))
    obj = _get(kubeconfig_path, ns, "configmap/settings")
    assert obj["data"]["key"] == "two"
    owners = _entries(obj)
    assert owners["kubectl"]["operation"] == "Apply"
    assert "f:key" in owners["kubectl"]["fieldsV1"]["f:data"]


def test_list_elements_by_key_and_shape(kubeconfig_path: Path, ns: str) -> None:
    containers_a = (
        "      - name: app\n        image: nginx:1.27\n        ports:\n        - containerPort: 80\n"
    )
    _apply(kubeconfig_path, DEPLOY.format(ns=ns, containers=containers_a), "--field-manager", "a")
    # b adds a sidecar container: merged by name, not replacing a's
    containers_b = "      - name: side\n        image: busybox:1.36\n"
    _apply(kubeconfig_path, DEPLOY.format(ns=ns, containers=containers_b), "--field-manager", "b")
    obj = _get(kubeconfig_path, ns, "deployment/web")
    names = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "side"]
    spec = _entries(obj)["a"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    app = spec['k:{"name":"app"}']
    assert app["."] == {} and app["f:name"] == {} and app["f:image"] == {}
    # the element's key carries the defaulted protocol, as Kubernetes writes it
    assert app["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}
    # b changing a's container image conflicts, naming the element by its key
    bad = "      - name: app\n        image: nginx:1.28\n"
    refused = _apply(
        kubeconfig_path, DEPLOY.format(ns=ns, containers=bad), "--field-manager", "b", check=False
    )
    assert '.spec.template.spec.containers[name="app"].image' in refused.stderr


async def test_apply_needs_a_field_manager(client: Any, ns: str) -> None:
    # kubectl always sends one; an empty one is refused as kube-apiserver refuses it
    cm = ConfigMap(metadata=ObjectMeta(name="settings", namespace=ns), data={"k": "v"})
    with pytest.raises(ApiError) as e:
        await client.patch(
            ConfigMap, "settings", cm, namespace=ns, patch_type=PatchType.APPLY, field_manager=""
        )
    assert e.value.status.code == 422
    assert e.value.status.message == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    created = await client.patch(
        ConfigMap, "settings", cm, namespace=ns, patch_type=PatchType.APPLY, field_manager="lk"
    )
    assert created.data == {"k": "v"}
    assert [(m.manager, m.operation) for m in created.metadata.managedFields] == [("lk", "Apply")]
