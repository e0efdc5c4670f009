"""`meshplane gen-eastwest-gateway`: print the east-west gateway's IstioOperator (SPEC §2)."""

from __future__ import annotations

from typing import Annotated

import typer

from meshplane.installer import eastwest


def gen_eastwest_gateway(
    network: Annotated[str, typer.Option("--network", help="the network of this cluster")] = "",
    revision: Annotated[str, typer.Option("--revision", help="control plane revision")] = "",
    single_cluster: Annotated[bool, typer.Option("--single-cluster", help="no multi-network labels")] = False,
    mesh: Annotated[str, typer.Option("--mesh", help="accepted and ignored, as in Istio's script")] = "",
    cluster: Annotated[
        str, typer.Option("--cluster", help="accepted and ignored, as in Istio's script")
    ] = "",
) -> None:
    """Print the IstioOperator of the east-west gateway (pipe it to `meshplane install -y -f -`)."""
    text = eastwest.generate(network, revision, single_cluster)
    typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.command("gen-eastwest-gateway")(gen_eastwest_gateway)
