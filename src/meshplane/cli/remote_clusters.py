"""`meshplane remote-clusters`: the clusters each control plane watches, as `istioctl remote-clusters`
prints them (NAME SECRET STATUS ISTIOD REVISION), read from every istiod's `/debug/clusterz`."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from meshplane.cli import common
from meshplane.ctl import debugclient, proxystatus


def rows(per_istiod: dict[str, list[dict[str, Any]]], revision: str) -> list[dict[str, str]]:
    out = []
    for istiod, entries in sorted(per_istiod.items()):
        for e in entries:
            out.append(
                {
                    "name": str(e.get("id", "")),
                    "secret": str(e.get("secretName", "")),
                    "status": str(e.get("syncStatus", "")),
                    "istiod": istiod,
                    "revision": revision,
                    **({"error": str(e["error"])} if e.get("error") else {}),
                }
            )
    return out


def table(rs: list[dict[str, str]]) -> str:
    """istioctl's layout (Go's tabwriter, padding 5), then any entry errors."""
    cells = [(r["name"], r["secret"], r["status"], r["istiod"], r["revision"]) for r in rs]
    text = proxystatus.tabulate(("NAME", "SECRET", "STATUS", "ISTIOD", "REVISION"), cells)
    problems = [f"  {r['name']} ({r['secret']}): {r['error']}" for r in rs if r.get("error")]
    return text + ("\nErrors:\n" + "\n".join(problems) + "\n" if problems else "")


async def _collect(
    urls: list[str], namespace: str, context: str | None, kubeconfig: str | None
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    kc, ctx = common.kube_target(context, kubeconfig)
    found = await debugclient.targets(urls, kc, ctx, namespace)
    pages, problems = await debugclient.collect(found, "/debug/clusterz")
    return {k: [dict(e) for e in v] for k, v in pages.items()}, problems


def remote_clusters(
    istiod_url: Annotated[
        list[str] | None,
        typer.Option("--istiod-url", help="discovery server monitoring URL (http://HOST:15014); repeatable"),
    ] = None,
    istio_namespace: Annotated[
        str, typer.Option("--istio-namespace", "-i", help="namespace of istiod")
    ] = "istio-system",
    revision: Annotated[str, typer.Option("--revision", "-r", help="control plane revision")] = "default",
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    context: common.ContextOpt = None,
    kubeconfig: common.KubeconfigOpt = None,
) -> None:
    """List the clusters each control plane watches and their sync status (synced, syncing, timeout).

    Without --istiod-url the control planes are the running `app=istiod` pods, asked at
    http://POD_IP:15014 (pod IPs must be reachable from here, as in the lab)."""
    if output not in ("table", "json"):
        raise common.fail(f"--output must be table or json, got {output!r}")
    per_istiod, problems = asyncio.run(_collect(istiod_url or [], istio_namespace, context, kubeconfig))
    for p in problems:
        typer.secho(f"Error: {p}", fg=typer.colors.RED, err=True)
    rs = rows(per_istiod, revision)
    typer.echo(json.dumps(rs, indent=2) + "\n" if output == "json" else table(rs), nl=False)
    if problems or not per_istiod:
        raise typer.Exit(1)
