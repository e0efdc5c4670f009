"""The `meshplane` command: one sub-app per command group, registered here.

A `MeshplaneError` from any command ends it the same way: `Error: <message>` on stderr, exit code 1.
"""

from __future__ import annotations

from typing import Any

import typer
from typer import core

from meshplane import __version__, errors
from meshplane.cli import common


class _Group(core.TyperGroup):
    """The root command group: turns a MeshplaneError raised by any command into a clean exit."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer may vendor its own click)
        try:
            return super().invoke(ctx)
        except errors.MeshplaneError as e:
            raise common.fail(str(e)) from e


app = typer.Typer(
    name="meshplane",
    cls=_Group,
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
        authz,
        dashboard,
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
    app.add_typer(authz.app, name="x")
    app.command("discovery", help="Run the control plane (pilot-discovery).")(discovery_cli.discovery)
    app.command(name="demo")(demo.demo)
    app.command("proxy-status")(proxy_status.proxy_status)
    app.command("remote-clusters")(remote_clusters.remote_clusters)
    app.command("dashboard")(dashboard.dashboard)
    eastwest.register(app)
    install.register(app)
    remote_secret.register(app)


def main() -> None:
    _register()
    app()
