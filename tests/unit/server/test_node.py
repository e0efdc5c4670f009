from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshplane.model import endpoint
from meshplane.model import proxy as proxy_mod
from meshplane.model.ids import ClusterId
from meshplane.server import errors, node
from tests.support import xdsclient

DEFAULT = ClusterId("cluster1")


def parse(node_id: str, meta: dict[str, Any] | None = None) -> proxy_mod.Proxy:
    return node.parse(xdsclient.make_node(node_id, meta), DEFAULT)


def test_sidecar_node_with_istio_metadata() -> None:
    p = parse(
        "sidecar~10.0.0.5~helloworld-v1-abc.sample~sample.svc.cluster.local",
        {
            "CLUSTER_ID": "cluster2",
            "NETWORK": "network1",
            "MESH_ID": "mesh1",
            "NAMESPACE": "sample",
            "SERVICE_ACCOUNT": "default",
            "LABELS": {"app": "helloworld", "version": "v1"},
            "INSTANCE_IPS": "10.0.0.5,fd00::5",
            "REQUESTED_NETWORK_VIEW": "network1, network2",
            "ISTIO_VERSION": "1.24.0",
            "ENVOY_STATUS_PORT": 15021,
        },
    )
    assert p.id == "helloworld-v1-abc.sample"
    assert p.type is proxy_mod.ProxyType.SIDECAR
    assert p.pod_name == "helloworld-v1-abc"
    assert p.namespace == "sample"
    assert p.dns_domain == "sample.svc.cluster.local"
    assert p.cluster_id == "cluster2"
    assert p.network == "network1"
    assert p.mesh_id == "mesh1"
    assert p.service_account == "default"
    assert dict(p.labels) == {"app": "helloworld", "version": "v1"}
    assert p.ip_addresses == ("10.0.0.5", "fd00::5")
    assert p.requested_network_view == ("network1", "network2")
    assert p.metadata["ISTIO_VERSION"] == "1.24.0"


def test_router_without_metadata_uses_the_id_and_the_default_cluster() -> None:
    p = parse("router~127.0.3.1~istio-eastwestgateway-1.istio-system~istio-system.svc.cluster.local")
    assert p.type is proxy_mod.ProxyType.ROUTER
    assert p.ip_addresses == ("127.0.3.1",)
    assert p.namespace == "istio-system"
    assert p.pod_name == "istio-eastwestgateway-1"
    assert p.cluster_id == DEFAULT
    assert dict(p.labels) == {}


def test_pod_name_with_dots_keeps_the_namespace_last() -> None:
    p = parse("sidecar~10.0.0.1~my.pod.name.ns1~ns1.svc.cluster.local")
    assert (p.pod_name, p.namespace) == ("my.pod.name", "ns1")


@pytest.mark.parametrize(
    ("node_id", "meta", "needle"),
    [
        ("", None, "missing node information"),
        ("sidecar~10.0.0.1~pod.ns", None, "4 parts"),
        ("sidecar~10.0.0.1~pod.ns~ns.svc~extra", None, "4 parts"),
        ("ingress~10.0.0.1~pod.ns~ns.svc.cluster.local", None, "invalid node type 'ingress'"),
        ("sidecar~not-an-ip~pod.ns~ns.svc.cluster.local", None, "no valid IP address"),
        ("sidecar~10.0.0.1~~ns.svc.cluster.local", None, "POD.NAMESPACE part is empty"),
        ("sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local", {"INSTANCE_IPS": "10.0.0.1,bogus"}, "INSTANCE_IPS"),
        ("sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local", {"LABELS": ["a"]}, "LABELS must be a map"),
        ("sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local", {"LABELS": {"a": 1}}, "LABELS must map strings"),
        ("sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local", {"CLUSTER_ID": 7}, "CLUSTER_ID must be a string"),
        ("sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local", {"ENVOY_STATUS_PORT": "x"}, "ENVOY_STATUS_PORT"),
        ("sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local", {"ENVOY_STATUS_PORT": 70000}, "ENVOY_STATUS_PORT"),
        ("sidecar~10.0.0.1~pod.Bad_NS~x", None, "not a DNS-1123 label"),
        ("sidecar~10.0.0.1~pod.ns~ns.svc", {"REQUESTED_NETWORK_VIEW": {"a": "b"}}, "REQUESTED_NETWORK_VIEW"),
    ],
)
def test_malformed_nodes_are_rejected_with_the_reason(
    node_id: str, meta: dict[str, Any] | None, needle: str
) -> None:
    with pytest.raises(errors.NodeError) as e:
        parse(node_id, meta)
    assert needle in e.value.message
    assert e.value.code.name == "INVALID_ARGUMENT"


def test_missing_node_is_rejected() -> None:
    with pytest.raises(errors.NodeError, match="missing node"):
        node.parse(None, DEFAULT)


_meta_values = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(-5, 70000),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), st.integers()), max_size=3),
)


@given(
    node_id=st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda a, b, c, d: f"{a}~{b}~{c}~{d}",
            st.sampled_from(["sidecar", "router", "x", ""]),
            st.sampled_from(["10.0.0.1", "::1", "", "300.1.1.1", "a"]),
            st.text(max_size=20),
            st.text(max_size=20),
        ),
    ),
    meta=st.dictionaries(
        st.sampled_from(
            [
                "CLUSTER_ID",
                "LABELS",
                "INSTANCE_IPS",
                "NAMESPACE",
                "ENVOY_STATUS_PORT",
                "REQUESTED_NETWORK_VIEW",
                "X",
            ]
        ),
        _meta_values,
        max_size=4,
    ),
)
def test_any_node_either_parses_or_fails_with_a_node_error(node_id: str, meta: dict[str, Any]) -> None:
    try:
        p = parse(node_id, meta)
    except errors.NodeError as e:
        assert e.message
    else:
        assert p.ip_addresses and p.namespace and p.id


def test_the_envoy_nodes_locality_is_the_proxys() -> None:
    n = xdsclient.make_node("sidecar~10.0.0.5~sleep-abc.sample~sample.svc.cluster.local", {})
    assert node.parse(n, DEFAULT).locality == endpoint.Locality()
    n.locality.region, n.locality.zone, n.locality.sub_zone = "region1", "zone1", "rack1"
    assert node.parse(n, DEFAULT).locality == endpoint.Locality("region1", "zone1", "rack1")
