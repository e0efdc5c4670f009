"""Flags shared by every command that talks to a cluster: kubectl-style --context/--kubeconfig.

They are accepted both before the subcommand (`meshplane --context c1 install`) and after it
(`meshplane install --context c1`); the one after wins. KUBECONFIG is honoured by the client factory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer


@dataclass
class GlobalOptions:
    context: str | None = None
    kubeconfig: str | None = None


GLOBAL = GlobalOptions()

ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context to use")]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", "-c", help="kubeconfig file")]


def kube_target(context: str | None, kubeconfig: str | None) -> tuple[str | None, str | None]:
    """(kubeconfig, context) with subcommand flags over global ones."""
    return (kubeconfig or GLOBAL.kubeconfig, context or GLOBAL.context)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a clear error to stderr and return the exit to raise."""
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)
