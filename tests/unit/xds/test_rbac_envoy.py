"""Random valid policy sets (AuthorizationPolicy, PeerAuthentication, RequestAuthentication) never
produce sidecar config that Envoy rejects: the captured and the explicit sidecar's listeners, with
the RBAC and JWT filters and chains the policies make, pass `envoy --mode validate` (Envoy's full
config load)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshplane.model import mesh
from meshplane.policy import config as policy_config
from meshplane.xds import generator, rbac, resources
from tests.support import envoyproc, strategies
from tests.support import meshdata as md
from tests.unit.xds.test_envoy_validate import _bootstrap, _decode, _mesh_ctx

pytestmark = pytest.mark.envoy

POLICY_SETS = st.lists(
    strategies.authorization_policies()
    | strategies.peer_authentications()
    | strategies.request_authentications(),
    min_size=1,
    max_size=5,
)


def _listeners(objs: list[dict[str, Any]], interception: str) -> tuple[list[Any], list[Any], int]:
    cfg, problems = policy_config.build(objs)
    assert problems == [], problems  # every generated object is valid Istio config
    c = dataclasses.replace(_mesh_ctx(mesh.MtlsMode.PERMISSIVE), policy=cfg)
    meta = {"INTERCEPTION_MODE": interception, "MESHPLANE_LOCALHOST": "127.0.101.5"}
    p = dataclasses.replace(md.proxy("127.0.1.5", metadata=meta), labels={"app": "helloworld"})
    g = generator.Generator()
    clusters = _decode(g.generate(resources.TYPE_CDS, p, c, None), cluster_pb2.Cluster)
    listeners = _decode(g.generate(resources.TYPE_LDS, p, c, None), listener_pb2.Listener)
    applied = len(cfg.authorization("istio-system", "sample", {"app": "helloworld"}))
    return clusters, listeners, applied


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objs=POLICY_SETS, interception=st.sampled_from(["REDIRECT", "NONE"]))
def test_random_policy_sets_load_into_envoy(objs: list[dict[str, Any]], interception: str) -> None:
    clusters, listeners, applied = _listeners(objs, interception)
    text = "".join(str(x) for x in listeners)
    if applied:
        assert rbac.HTTP_RBAC in text or rbac.NETWORK_RBAC in text
    result = envoyproc.validate(_bootstrap(clusters, listeners))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
