"""Hypothesis: any input either loads into a config that renders valid objects, or is a ConfigError."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshplane.installer import config, errors, render
from tests.support import strategies

BASE: dict[str, Any] = yaml.safe_load(
    """\
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  values:
    global:
      meshID: mesh1
      multiCluster:
        clusterName: cluster1
      network: network1
  components:
    ingressGateways:
    - name: gw
      label: {app: gw}
      k8s:
        env: [{name: A, value: b}]
        service:
          ports: [{name: p, port: 80, targetPort: 8080}]
"""
)

PATHS = [
    ("spec", "profile"),
    ("spec", "revision"),
    ("spec", "hub"),
    ("spec", "tag"),
    ("spec", "namespace"),
    ("spec", "meshConfig", "trustDomain"),
    ("spec", "meshConfig", "defaultConfig"),
    ("spec", "values", "global", "network"),
    ("spec", "values", "global", "meshID"),
    ("spec", "values", "global", "remotePilotAddress"),
    ("spec", "values", "global", "externalIstiod"),
    ("spec", "values", "global", "multiCluster", "clusterName"),
    ("spec", "values", "global", "proxy", "resources"),
    ("spec", "values", "pilot", "env"),
    ("spec", "values", "pilot", "env", "X"),
    ("spec", "values", "istiodRemote", "injectionPath"),
    ("spec", "components", "pilot", "k8s", "env"),
    ("spec", "components", "ingressGateways"),
    ("spec", "components", "ingressGateways", 0, "name"),
    ("spec", "components", "ingressGateways", 0, "label"),
    ("spec", "components", "ingressGateways", 0, "k8s", "service", "ports"),
    ("spec", "components", "ingressGateways", 0, "k8s", "service", "ports", 0, "port"),
    ("spec", "components", "ingressGateways", 0, "k8s", "service", "ports", 0, "targetPort"),
    ("spec", "components", "ingressGateways", 0, "k8s", "env", 0, "value"),
    ("spec", "nonsense"),
    ("metadata", "name"),
    ("kind",),
]

_scalar = (
    st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False) | st.text(max_size=12)
)
_values = strategies.json_values(_scalar, max_leaves=8)


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    node: Any = doc
    for key in path[:-1]:
        if isinstance(key, int):
            if not isinstance(node, list) or len(node) <= key:
                return doc
            node = node[key]
        else:
            if not isinstance(node, dict):
                return doc
            node = node.setdefault(key, {})
    last = path[-1]
    fits_map = isinstance(node, dict) and not isinstance(last, int)
    fits_list = isinstance(node, list) and isinstance(last, int) and len(node) > last
    if fits_map or fits_list:
        node[last] = value
    return doc


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), _values), min_size=1, max_size=4))
def test_inputs_load_and_render_or_fail_cleanly(edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = copy.deepcopy(BASE)
    for path, value in edits:
        doc = _set(doc, path, value)
    try:
        text = yaml.safe_dump(doc)
    except yaml.YAMLError:
        return
    try:
        cfg = config.load([("fuzz.yaml", text)])
    except errors.ConfigError as e:
        assert e.issues and all(str(i) for i in e.issues)
        return
    for obj in render.render(cfg):
        if not obj["apiVersion"].endswith("istio.io/v1"):
            kubernetes_validate.validate(obj, "1.32", strict=True)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_set_flags_never_crash(flag: str) -> None:
    try:
        config.load([("x.yaml", yaml.safe_dump(BASE))], [flag])
    except errors.ConfigError as e:
        assert e.issues
