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
    # One line per group: `from meshplane.cli import X` then `app.add_typer(X.app, name=...)`.
    from meshplane.cli import demo, devcluster, eastwest, install, lab, remote_secret

    app.add_typer(devcluster.app, name="devcluster")
    app.add_typer(lab.app, name="lab")
    app.command(name="demo")(demo.demo)
    eastwest.register(app)
    install.register(app)
    remote_secret.register(app)


def main() -> None:
    _register()
    app()
