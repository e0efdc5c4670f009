"""`meshplane create-remote-secret`: print the Secret that attaches a remote cluster (SPEC §3)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from meshplane.cli import common
from meshplane.installer import checks, kubeclient, rbac, remotesecret


def _warn(message: str) -> None:
    typer.secho(f"Warning: {message}", fg="yellow", err=True)


async def _create(kube: Any, opts: remotesecret.Options) -> str:
    client = kubeclient.client(kube)
    try:
        return await remotesecret.RemoteSecret(client).create(opts, kube.cluster.server, warn=_warn)
    finally:
        await client.close()


def create_remote_secret(
    name: Annotated[str, typer.Option("--name", help="the cluster's name (a DNS-1123 label)")] = "",
    service_account: Annotated[
        str, typer.Option("--service-account", help="reader service account")
    ] = rbac.READER_SA,
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="namespace of the service account")
    ] = "istio-system",
    server: Annotated[str, typer.Option("--server", help="API server URL the primary should use")] = "",
    secret_name: Annotated[
        str, typer.Option("--secret-name", help="use this service-account token Secret")
    ] = "",
    create_service_account: Annotated[
        bool,
        typer.Option("--create-service-account/--no-create-service-account", help="create it when missing"),
    ] = True,
    context: common.ContextOpt = None,
    kubeconfig: common.KubeconfigOpt = None,
) -> None:
    """Print a Secret with a kubeconfig for this cluster's reader service account (istioctl's format)."""
    if name and not checks.is_dns_label(name):
        raise common.fail(f"--name {name!r} is not a valid DNS-1123 label")
    opts = remotesecret.Options(
        name=name,
        namespace=namespace,
        service_account=service_account,
        secret_name=secret_name,
        server=server,
        create_service_account=create_service_account,
    )
    kube = kubeclient.load(*common.kube_target(context, kubeconfig))
    text = asyncio.run(_create(kube, opts))
    typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.command("create-remote-secret")(create_remote_secret)
