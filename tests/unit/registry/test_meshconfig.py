import pytest

from meshplane.model import mesh
from meshplane.registry import errors, meshconfig

BASE = mesh.MeshConfig()


def test_reads_trust_domain_mesh_id_and_cluster_local_settings() -> None:
    cfg = meshconfig.parse(
        """
trustDomain: example.org
defaultConfig: {meshId: mesh1, discoveryAddress: istiod.istio-system.svc:15012}
serviceSettings:
- settings: {clusterLocal: true}
  hosts: ["*.local-only.svc.cluster.local"]
- settings: {clusterLocal: false}
  hosts: ["istiod.istio-system.svc.cluster.local"]
accessLogFile: /dev/stdout
""",
        BASE,
    )
    assert cfg.trust_domain == "example.org" and cfg.mesh_id == "mesh1"
    assert cfg.is_cluster_local("a.local-only.svc.cluster.local")  # type: ignore[arg-type]
    assert not cfg.is_cluster_local("istiod.istio-system.svc.cluster.local")  # type: ignore[arg-type]
    assert cfg.is_cluster_local("kube-dns.kube-system.svc.cluster.local")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", mesh.OutboundTrafficPolicy.ALLOW_ANY),
        ("outboundTrafficPolicy: {}", mesh.OutboundTrafficPolicy.ALLOW_ANY),
        ("outboundTrafficPolicy: {mode: ALLOW_ANY}", mesh.OutboundTrafficPolicy.ALLOW_ANY),
        ("outboundTrafficPolicy: {mode: REGISTRY_ONLY}", mesh.OutboundTrafficPolicy.REGISTRY_ONLY),
    ],
)
def test_outbound_traffic_policy(text: str, want: mesh.OutboundTrafficPolicy) -> None:
    assert meshconfig.parse(text, BASE).outbound_traffic_policy is want


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("trustDomain: [1]", "mesh.trustDomain"),
        ("serviceSettings: {}", "mesh.serviceSettings"),
        (
            "serviceSettings: [{settings: {clusterLocal: 'yes'}, hosts: [a]}]",
            "serviceSettings[0].settings.clusterLocal",
        ),
        ("serviceSettings: [{hosts: a}]", "serviceSettings[0].hosts"),
        ("outboundTrafficPolicy: REGISTRY_ONLY", "mesh.outboundTrafficPolicy"),
        ("outboundTrafficPolicy: {mode: DENY}", "mesh.outboundTrafficPolicy.mode"),
        ("outboundTrafficPolicy: {mode: 1}", "mesh.outboundTrafficPolicy.mode"),
        ("- a", "expected a mapping"),
        ("a: [", "not valid YAML"),
    ],
)
def test_errors_name_the_field(text: str, path: str) -> None:
    with pytest.raises(errors.MeshConfigError, match=path.replace("[", r"\[").replace("]", r"\]")):
        meshconfig.parse(text, BASE)


def test_mesh_wide_peer_authentication() -> None:
    strict = {
        "metadata": {"name": "default", "namespace": "istio-system"},
        "spec": {"mtls": {"mode": "STRICT"}},
    }
    other_ns = {"metadata": {"name": "default", "namespace": "sample"}, "spec": {"mtls": {"mode": "STRICT"}}}
    assert meshconfig.mtls_mode([], "istio-system") is mesh.MtlsMode.PERMISSIVE
    assert meshconfig.mtls_mode([other_ns], "istio-system") is mesh.MtlsMode.PERMISSIVE
    assert meshconfig.mtls_mode([strict], "istio-system") is mesh.MtlsMode.STRICT
