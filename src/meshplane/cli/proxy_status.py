"""`meshplane proxy-status`: the xDS sync state of every proxy, as `istioctl proxy-status` prints it."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from meshplane.cli import common
from meshplane.ctl import debugclient, proxystatus


def proxy_status(
    proxy: Annotated[str, typer.Argument(help="only proxies whose id contains this")] = "",
    istiod_url: Annotated[
        list[str] | None,
        typer.Option("--istiod-url", help="discovery server monitoring URL (http://HOST:15014); repeatable"),
    ] = None,
    istio_namespace: Annotated[
        str, typer.Option("--istio-namespace", "-i", help="namespace of the istiod pods")
    ] = "istio-system",
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    context: common.ContextOpt = None,
    kubeconfig: common.KubeconfigOpt = None,
) -> None:
    """Show whether each proxy is SYNCED with its discovery server for CDS, LDS, EDS, RDS and ECDS.

    Without --istiod-url the discovery servers are the running `app=istiod` pods of --istio-namespace,
    asked at http://POD_IP:15014; this needs pod IPs to be reachable from here (as in the lab).
    """
    if output not in ("table", "json"):
        raise common.fail(f"--output must be table or json, got {output!r}")
    statuses, problems = asyncio.run(_collect(istiod_url or [], istio_namespace, context, kubeconfig))
    for p in problems:
        typer.secho(f"Error: {p}", fg=typer.colors.RED, err=True)
    if not statuses:
        raise typer.Exit(1)
    rows = proxystatus.rows(statuses, proxy)
    typer.echo(proxystatus.as_json(rows) if output == "json" else proxystatus.table(rows), nl=False)
    if problems:
        raise typer.Exit(1)


async def _collect(
    urls: list[str], namespace: str, context: str | None, kubeconfig: str | None
) -> tuple[dict[str, list[dict[str, object]]], list[str]]:
    kc, ctx = common.kube_target(context, kubeconfig)
    found = await debugclient.targets(urls, kc, ctx, namespace)
    statuses, problems = await debugclient.collect(found, "/debug/syncz")
    return {k: [dict(e) for e in v] for k, v in statuses.items()}, problems
