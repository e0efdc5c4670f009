"""Request paths to resource targets (api.routing), without a server."""

from __future__ import annotations

import pytest

from meshplane.devcluster import errors
from meshplane.devcluster.api import routing
from meshplane.devcluster.schema import resources

REG = resources.Registry.with_builtins()


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/api/v1/pods", ("pods", "", "", "")),
        ("/api/v1/namespaces/ns1/pods/p/status", ("pods", "ns1", "p", "status")),
        ("/api/v1/namespaces/ns1", ("namespaces", "", "ns1", "")),
        ("/api/v1/namespaces/ns1/status", ("namespaces", "", "ns1", "status")),
        ("/apis/apps/v1/namespaces/a/deployments", ("deployments", "a", "", "")),
        ("/api/v1/watch/namespaces/a/configmaps", ("configmaps", "a", "", "")),
    ],
)
def test_routing(path: str, want: tuple[str, str, str, str]) -> None:
    t = routing.parse(path, REG)
    assert t is not None and (t.plural, t.namespace, t.name, t.subresource) == want


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/widgets",
        "/api/v1/namespaces/a/nodes",
        "/api/v1/pods/p/bogus",
        "/apis/apps/v9/deployments",
        "/api/v1/namespaces/a/pods/p/x/y",
    ],
)
def test_routing_not_found(path: str) -> None:
    with pytest.raises(errors.ApiError) as e:
        routing.parse(path, REG)
    assert e.value.code == 404
    assert routing.parse("/version", REG) is None
