"""The east-west gateway IstioOperator, byte for byte what multicluster/gen-eastwest-gateway.sh prints.

`--mesh` and `--cluster` are accepted and ignored, as in Istio's current script: the gateway takes
its cluster and mesh from the control plane of the cluster it is installed in.
"""

from __future__ import annotations

from meshplane.installer import errors


def generate(network: str = "", revision: str = "", single_cluster: bool = False) -> str:
    """The IstioOperator text (ends with one newline), or InstallError when --network is missing."""
    if not single_cluster and not network:
        raise errors.InstallError("Must specify either --single-cluster or --network.")
    lines = [
        "apiVersion: install.istio.io/v1alpha1",
        "kind: IstioOperator",
        "metadata:",
        "  name: eastwest",
        "spec:",
        f'  revision: "{revision}"',
        "  profile: empty",
        "  components:",
        "    ingressGateways:",
        "      - name: istio-eastwestgateway",
        "        label:",
        "          istio: eastwestgateway",
        "          app: istio-eastwestgateway",
    ]
    if not single_cluster:
        lines.append(f"          topology.istio.io/network: {network}")
    lines += ["        enabled: true", "        k8s:"]
    if not single_cluster:
        lines += [
            "          env:",
            "            # traffic through this gateway should be routed inside the network",
            "            - name: ISTIO_META_REQUESTED_NETWORK_VIEW",
            f"              value: {network}",
        ]
    lines += ["          service:", "            ports:"]
    for name, port in (("status-port", 15021), ("tls", 15443), ("tls-istiod", 15012), ("tls-webhook", 15017)):
        lines += [
            f"              - name: {name}",
            f"                port: {port}",
            f"                targetPort: {port}",
        ]
    lines += [
        "  values:",
        "    gateways:",
        "      istio-ingressgateway:",
        "        injectionTemplate: gateway",
    ]
    if not single_cluster:
        lines += ["    global:", f"      network: {network}"]
    return "\n".join(lines) + "\n"
