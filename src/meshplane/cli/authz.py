"""`meshplane x authz check POD` → ctl.authzcheck."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from meshplane.cli import common
from meshplane.ctl import authzcheck

app = typer.Typer(help="Experimental commands (istioctl x).", no_args_is_help=True)
authz_app = typer.Typer(help="Inspect authorization policy.", no_args_is_help=True)
app.add_typer(authz_app, name="authz")


@authz_app.command("check")
def check(
    pod: Annotated[str, typer.Argument(help="the pod (NAME or NAME.NAMESPACE)")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="the pod's namespace")] = "default",
    istio_namespace: Annotated[
        str, typer.Option("--istio-namespace", "-i", help="the root namespace (mesh-wide policies)")
    ] = "istio-system",
    output: Annotated[
        str, typer.Option("--output", "-o", help="table or json (with the Envoy RBAC)")
    ] = "table",
    context: common.ContextOpt = None,
    kubeconfig: common.KubeconfigOpt = None,
) -> None:
    """List the AuthorizationPolicies that apply to POD (ACTION, NAME.NAMESPACE, RULES) and, with
    -o json, the Envoy RBAC filters its sidecar gets from them."""
    if output not in ("table", "json"):
        raise common.fail(f"--output must be table or json, got {output!r}")
    name, _, ns = pod.partition(".")
    kc, ctx = common.kube_target(context, kubeconfig)
    rep = asyncio.run(authzcheck.check(name, ns or namespace, kc, ctx, istio_namespace))
    for p in rep.problems:
        typer.secho(f"Warning: {p}", fg=typer.colors.YELLOW, err=True)
    typer.echo(rep.as_json() if output == "json" else rep.table(), nl=False)
