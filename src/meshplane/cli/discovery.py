"""`meshplane discovery`: the control plane (Istio's pilot-discovery). Flags mirror Istio's env."""

from __future__ import annotations

from typing import Annotated

import typer

from meshplane.cli import common
from meshplane.discovery import errors as discovery_errors
from meshplane.discovery import options, run
from meshplane.runtime import logging as rlog


def discovery(
    args: Annotated[
        list[str] | None, typer.Argument(hidden=True, help="ignored (Istio's image passes 'discovery')")
    ] = None,
    kubeconfig: common.KubeconfigOpt = None,
    context: common.ContextOpt = None,
    cluster_id: Annotated[
        str | None, typer.Option("--cluster-id", help="this cluster's ID (CLUSTER_ID)")
    ] = None,
    network: Annotated[str | None, typer.Option("--network", help="this cluster's network (NETWORK)")] = None,
    mesh_id: Annotated[str | None, typer.Option("--mesh-id", help="the mesh ID (MESH_ID)")] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="namespace of the control plane (POD_NAMESPACE)")
    ] = None,
    bind_address: Annotated[
        str | None, typer.Option("--bind-address", help="address every port binds (default 0.0.0.0)")
    ] = None,
    xds_plaintext_port: Annotated[
        int, typer.Option("--xds-plaintext-port", help="plaintext xDS (debugging)")
    ] = 15010,
    disable_plaintext_xds: Annotated[
        bool, typer.Option("--disable-plaintext-xds", help="do not serve 15010")
    ] = False,
    secure_grpc_port: Annotated[int, typer.Option("--secure-grpc-port", help="TLS xDS + CA")] = 15012,
    monitoring_port: Annotated[int, typer.Option("--monitoring-port", help="metrics and debug HTTP")] = 15014,
    webhook_port: Annotated[int, typer.Option("--webhook-port", help="HTTPS webhooks (injection)")] = 15017,
    revision: Annotated[
        str | None, typer.Option("--revision", help="control plane revision (REVISION)")
    ] = None,
    trust_domain: Annotated[str | None, typer.Option("--trust-domain", help="SPIFFE trust domain")] = None,
    extra_san: Annotated[
        list[str] | None, typer.Option("--extra-san", help="extra serving-cert name or IP")
    ] = None,
    resync_period: Annotated[
        str | None, typer.Option("--resync-period", help="full relist period (5m)")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error")] = "info",
) -> None:
    """Run the control plane: watch the clusters, serve xDS and certificates."""
    rlog.setup(log_level)
    kubeconfig_path, ctx = common.kube_target(context, kubeconfig)
    flags: dict[str, object] = {
        "kubeconfig": kubeconfig_path,
        "context": ctx,
        "cluster_id": cluster_id,
        "network": network,
        "mesh_id": mesh_id,
        "namespace": namespace,
        "bind_address": bind_address,
        "xds_plaintext_port": xds_plaintext_port,
        "disable_plaintext_xds": disable_plaintext_xds,
        "secure_grpc_port": secure_grpc_port,
        "monitoring_port": monitoring_port,
        "webhook_port": webhook_port,
        "revision": revision,
        "trust_domain": trust_domain,
        "extra_san": extra_san or [],
        "resync_period": resync_period,
    }
    try:
        opts = options.build(flags)
    except discovery_errors.OptionsError as e:
        raise common.fail(str(e), 2) from e
    run.run(opts)
