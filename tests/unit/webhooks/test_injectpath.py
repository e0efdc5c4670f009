from __future__ import annotations

import pytest

from meshplane.webhooks import injectpath


@pytest.mark.parametrize(
    ("path", "envs"),
    [
        ("/inject", {}),
        ("/inject/", {}),
        (
            "/inject/cluster/cluster2/net/network1",
            {"ISTIO_META_CLUSTER_ID": "cluster2", "ISTIO_META_NETWORK": "network1"},
        ),
        ("/inject/net/n1/cluster/c1/", {"ISTIO_META_CLUSTER_ID": "c1", "ISTIO_META_NETWORK": "n1"}),
        ("/inject/cluster/c1/foo/bar", {"ISTIO_META_CLUSTER_ID": "c1", "FOO": "bar"}),
        ("/inject/rootpage/a--slash--b--slash--c", {"ROOTPAGE": "a/b/c"}),
        (
            "/inject/:ENV:net=network1:ENV:cluster=cluster1:ENV:rootpage=/foo/bar",
            {"ISTIO_META_NETWORK": "network1", "ISTIO_META_CLUSTER_ID": "cluster1", "ROOTPAGE": "/foo/bar"},
        ),
        ("/inject/:ENV:=x:ENV:ok=:ENV:bad", {"OK": ""}),
    ],
)
def test_parse(path: str, envs: dict[str, str]) -> None:
    assert injectpath.parse(path).envs == envs


def test_deprecated_form_keeps_cluster_and_net_keys_as_url_parameters() -> None:
    # Istio maps `cluster`/`net` in both forms through URLParameterToEnv
    got = injectpath.parse("/inject/:ENV:cluster=c9:ENV:net=n9").envs
    assert got == {"ISTIO_META_CLUSTER_ID": "c9", "ISTIO_META_NETWORK": "n9"}


def test_dangling_key_is_ignored_with_a_warning() -> None:
    got = injectpath.parse("/inject/cluster/c1/net")
    assert got.envs == {"ISTIO_META_CLUSTER_ID": "c1"}
    assert got.warnings and "net" in got.warnings[0]
