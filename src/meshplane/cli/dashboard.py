"""`meshplane dashboard`: open the mesh console of the control plane (as `istioctl dashboard` opens
Kiali), or with `--no-browser` only print its URL (for scripts and headless machines)."""

from __future__ import annotations

import asyncio
import webbrowser
from typing import Annotated

import typer

from meshplane.cli import common
from meshplane.ctl import dashboard as ctl_dashboard
from meshplane.ctl import errors as ctl_errors


def dashboard(
    istiod_url: Annotated[
        list[str] | None,
        typer.Option("--istiod-url", help="discovery server monitoring URL (http://HOST:15014); repeatable"),
    ] = None,
    istio_namespace: Annotated[
        str, typer.Option("--istio-namespace", "-i", help="namespace of istiod")
    ] = "istio-system",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="print the URL only, do not open a browser")
    ] = False,
    context: common.ContextOpt = None,
    kubeconfig: common.KubeconfigOpt = None,
) -> None:
    """Open the mesh console (graph, clusters, services, proxies, config) served by the control plane.

    Without --istiod-url the control plane is the running `app=istiod` pod of the context's cluster,
    at http://POD_IP:15014/console/ (pod IPs are reachable from the host in the lab)."""
    kc, ctx = common.kube_target(context, kubeconfig)
    try:
        found, problems = asyncio.run(ctl_dashboard.console_urls(istiod_url or [], kc, ctx, istio_namespace))
    except ctl_errors.CtlError as e:
        raise common.fail(str(e)) from e
    for p in problems:
        typer.secho(f"Error: {p}", fg=typer.colors.RED, err=True)
    if not found:
        raise typer.Exit(1)
    _, url = found[0]
    typer.echo(url)
    if not no_browser and not webbrowser.open(url):
        typer.echo("no browser found here: open the URL above, or use --no-browser", err=True)
