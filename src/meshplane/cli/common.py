"""Flags shared by every command that talks to a cluster: kubectl-style --context/--kubeconfig.

They are accepted both before the subcommand (`meshplane --context c1 install`) and after it
(`meshplane install --context c1`); the one after wins. KUBECONFIG is honoured by the client factory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console


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


def console(*, stderr: bool = False) -> Console:
    """The rich Console every command prints through. On a terminal it wraps at the terminal's
    width; anywhere else (a pipe, a file, a test) it never breaks a line, so a message stays one
    line whatever its length (rich would otherwise hard-wrap at 80 columns)."""
    from rich.console import Console  # imported here so that `meshplane --help` stays cheap

    out = Console(stderr=stderr, highlight=False)
    out.soft_wrap = not out.is_terminal
    return out


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a clear error to stderr and return the exit to raise."""
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)
