from lightkube.models import core_v1 as m
from lightkube.models import discovery_v1 as d
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1, discovery_v1

from meshplane.model import endpoint as ep
from meshplane.model import ids
from meshplane.model import service as svc
from meshplane.registry import convert

C1 = ids.ClusterId("cluster1")
C2 = ids.ClusterId("cluster2")


def make_service(name: str = "helloworld", ns: str = "sample", ip: str = "10.96.0.5") -> core_v1.Service:
    return core_v1.Service(
        metadata=ObjectMeta(name=name, namespace=ns, labels={"app": name}),
        spec=m.ServiceSpec(
            ports=[m.ServicePort(name="http", port=5000), m.ServicePort(name="grpc-x", port=7000)],
            clusterIP=ip,
            clusterIPs=[ip],
            type="ClusterIP",
        ),
    )


def make_pod(name: str, ip: str, labels: dict[str, str] | None = None, node: str = "node1") -> core_v1.Pod:
    return core_v1.Pod(
        metadata=ObjectMeta(name=name, namespace="sample", labels=labels or {"app": "helloworld"}),
        spec=m.PodSpec(containers=[m.Container(name="app")], serviceAccountName="hello-sa", nodeName=node),
        status=m.PodStatus(phase="Running", podIP=ip),
    )


def make_slice(*eps: tuple[str, str, d.EndpointConditions]) -> discovery_v1.EndpointSlice:
    return discovery_v1.EndpointSlice(
        addressType="IPv4",
        metadata=ObjectMeta(
            name="helloworld-abc", namespace="sample", labels={convert.LABEL_SERVICE_NAME: "helloworld"}
        ),
        ports=[d.EndpointPort(name="http", port=5000)],
        endpoints=[
            d.Endpoint(
                addresses=[ip],
                conditions=cond,
                targetRef=m.ObjectReference(kind="Pod", name=pod, namespace="sample"),
            )
            for pod, ip, cond in eps
        ],
    )


def test_service_converts_ports_protocols_and_vip() -> None:
    s = convert.service(make_service(), C1)
    assert s.hostname == "helloworld.sample.svc.cluster.local"
    assert [(p.name, p.port, p.protocol) for p in s.ports] == [
        ("http", 5000, svc.Protocol.HTTP),
        ("grpc-x", 7000, svc.Protocol.GRPC),
    ]
    assert dict(s.cluster_vips) == {C1: ("10.96.0.5",)}


def test_headless_and_external_name_have_no_vip() -> None:
    headless = make_service(ip="None")
    assert dict(convert.service(headless, C1).cluster_vips) == {}
    ext = core_v1.Service(
        metadata=ObjectMeta(name="x", namespace="ns"),
        spec=m.ServiceSpec(type="ExternalName", externalName="example.com"),
    )
    converted = convert.service(ext, C1)
    assert converted.external_name == "example.com"
    assert dict(converted.cluster_vips) == {}


def test_endpoints_carry_pod_identity_health_and_locality() -> None:
    pods = {
        ("sample", "p1"): make_pod(
            "p1", "127.0.2.5", {"app": "helloworld", "security.istio.io/tlsMode": "istio"}
        ),
        ("sample", "p2"): make_pod(
            "p2", "127.0.2.6", {"app": "helloworld", "topology.istio.io/network": "net2"}
        ),
    }
    node = core_v1.Node(
        metadata=ObjectMeta(
            name="node1", labels={"topology.kubernetes.io/region": "r1", "topology.kubernetes.io/zone": "z1"}
        )
    )
    sl = make_slice(
        ("p1", "127.0.2.5", d.EndpointConditions(ready=True)),
        ("p2", "127.0.2.6", d.EndpointConditions(ready=False)),
        ("p3", "127.0.2.7", d.EndpointConditions(ready=False, serving=True, terminating=True)),
    )
    out = convert.endpoints_from_slice(
        sl, C2, default_network="network1", pods=lambda ns, n: pods.get((ns, n)), nodes=lambda n: node
    )
    assert [(e.address, e.health) for e in out] == [
        ("127.0.2.5", ep.Health.HEALTHY),
        ("127.0.2.6", ep.Health.UNHEALTHY),
        ("127.0.2.7", ep.Health.DRAINING),
    ]
    first = out[0]
    assert first.cluster_id == C2
    assert dict(first.ports) == {"http": 5000}
    assert first.service_account == "hello-sa"
    assert first.tls_mode == "istio"
    assert first.network == "network1"
    assert first.locality == ep.Locality("r1", "z1", "")
    assert first.labels["topology.istio.io/cluster"] == "cluster2"
    assert first.labels["app"] == "helloworld"
    assert out[1].network == "net2"  # the pod label wins over the cluster's network
    assert out[1].tls_mode == ""
    # no pod known yet: endpoint still served, without pod data
    assert out[2].service_account == "" and out[2].workload_name == "p3"


def test_istio_locality_label_overrides_node() -> None:
    pod = make_pod("p", "1.1.1.1", {"istio-locality": "us.east.a"})
    assert convert.locality(pod, None) == ep.Locality("us", "east", "a")


def test_merge_first_cluster_wins_vips_and_sas_merge() -> None:
    a = convert.service(make_service(ip="10.96.0.5"), C1)
    b_obj = make_service(ip="10.97.0.9")
    b_obj.spec.ports = [m.ServicePort(name="http", port=6000)]
    b_obj.metadata.annotations = {convert.ANNOTATION_CANONICAL_SAS: "x,y"}
    b = convert.service(b_obj, C2)
    merged = convert.merge_services([a, b])
    assert [p.port for p in merged.ports] == [5000, 7000]
    assert dict(merged.cluster_vips) == {C1: ("10.96.0.5",), C2: ("10.97.0.9",)}
    assert merged.service_accounts == frozenset({"x", "y"})
