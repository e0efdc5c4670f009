"""The `meshplane` command: one sub-app per command group, registered here."""

from __future__ import annotations

import typer

from meshplane import __version__
from meshplane.cli import common

app = typer.Typer(
    name="meshplane",
    help="A small multicluster service-mesh control plane (Istio primary-remote), istioctl-compatible.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    context: common.ContextOpt = None,
    kubeconfig: common.KubeconfigOpt = None,
) -> None:
    common.GLOBAL.context = context
    common.GLOBAL.kubeconfig = kubeconfig


@app.command()
def version() -> None:
    """Print meshplane's version."""
    typer.echo(__version__)


def _register() -> None:
    # Command groups are imported here so that importing meshplane.cli.main stays cheap.
    from meshplane.cli import (
        agent,
        demo,
        devcluster,
        eastwest,
        install,
        lab,
        proxy_status,
        remote_clusters,
        remote_secret,
    )
    from meshplane.cli import discovery as discovery_cli

    app.add_typer(agent.app, name="agent")
    app.add_typer(devcluster.app, name="devcluster")
    app.add_typer(lab.app, name="lab")
    app.command("discovery", help="Run the control plane (pilot-discovery).")(discovery_cli.discovery)
    app.command(name="demo")(demo.demo)
    app.command("proxy-status")(proxy_status.proxy_status)
    app.command("remote-clusters")(remote_clusters.remote_clusters)
    eastwest.register(app)
    install.register(app)
    remote_secret.register(app)


def main() -> None:
    _register()
    app()
