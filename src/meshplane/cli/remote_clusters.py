"""`meshplane remote-clusters`: the clusters each control plane watches, as `istioctl remote-clusters`
prints them (NAME SECRET STATUS ISTIOD REVISION), read from every istiod's `/debug/clusterz`.

`-o wide` adds meshplane's propagation SLI per cluster from `/debug/propagationz`: the p50 and p99 of
the recent meshplane_config_propagation_seconds samples (change seen by the watch → last proxy's
ACK) and how many samples they come from."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from meshplane.cli import common
from meshplane.ctl import debugclient, proxystatus
from meshplane.runtime import durations


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


def _seconds(value: object) -> str:
    return durations.human(round(float(value), 3)) if isinstance(value, int | float) else "-"


def add_propagation(rs: list[dict[str, str]], per_istiod: dict[str, list[dict[str, Any]]]) -> None:
    """Each row's cluster's recent propagation p50/p99 as its istiod measured it ("-": no sample)."""
    for r in rs:
        entry = next((e for e in per_istiod.get(r["istiod"], []) if e.get("cluster") == r["name"]), {})
        r["propagation_p50"] = _seconds(entry.get("p50"))
        r["propagation_p99"] = _seconds(entry.get("p99"))
        r["propagation_samples"] = str(entry.get("samples", 0))


def table(rs: list[dict[str, str]], wide: bool = False) -> str:
    """istioctl's layout (Go's tabwriter, padding 5), then any entry errors."""
    header: tuple[str, ...] = ("NAME", "SECRET", "STATUS", "ISTIOD", "REVISION")
    cells: list[tuple[str, ...]] = [
        (r["name"], r["secret"], r["status"], r["istiod"], r["revision"]) for r in rs
    ]
    if wide:
        header += ("PROPAGATION-P50", "P99", "SAMPLES")
        cells = [
            (*c, r["propagation_p50"], r["propagation_p99"], r["propagation_samples"])
            for c, r in zip(cells, rs, strict=True)
        ]
    text = proxystatus.tabulate(header, cells)
    problems = [f"  {r['name']} ({r['secret']}): {r['error']}" for r in rs if r.get("error")]
    return text + ("\nErrors:\n" + "\n".join(problems) + "\n" if problems else "")


Pages = dict[str, list[dict[str, Any]]]


async def _collect(
    urls: list[str], namespace: str, context: str | None, kubeconfig: str | None, wide: bool
) -> tuple[Pages, Pages, list[str]]:
    kc, ctx = common.kube_target(context, kubeconfig)
    found = await debugclient.targets(urls, kc, ctx, namespace)
    pages, problems = await debugclient.collect(found, "/debug/clusterz")
    slis: Pages = {}
    if wide:
        sli_pages, sli_problems = await debugclient.collect(found, "/debug/propagationz")
        slis = {k: [dict(e) for e in v] for k, v in sli_pages.items()}
        problems += sli_problems
    return {k: [dict(e) for e in v] for k, v in pages.items()}, slis, problems


def remote_clusters(
    istiod_url: Annotated[
        list[str] | None,
        typer.Option("--istiod-url", help="discovery server monitoring URL (http://HOST:15014); repeatable"),
    ] = None,
    istio_namespace: Annotated[
        str, typer.Option("--istio-namespace", "-i", help="namespace of istiod")
    ] = "istio-system",
    revision: Annotated[str, typer.Option("--revision", "-r", help="control plane revision")] = "default",
    output: Annotated[
        str, typer.Option("--output", "-o", help="table, wide (adds the propagation p50/p99) or json")
    ] = "table",
    context: common.ContextOpt = None,
    kubeconfig: common.KubeconfigOpt = None,
) -> None:
    """List the clusters each control plane watches and their sync status (synced, syncing, timeout).

    Without --istiod-url the control planes are the running `app=istiod` pods, asked at
    http://POD_IP:15014 (pod IPs must be reachable from here, as in the lab)."""
    if output not in ("table", "wide", "json"):
        raise common.fail(f"--output must be table, wide or json, got {output!r}")
    wide = output == "wide"
    per_istiod, slis, problems = asyncio.run(
        _collect(istiod_url or [], istio_namespace, context, kubeconfig, wide)
    )
    for p in problems:
        typer.secho(f"Error: {p}", fg=typer.colors.RED, err=True)
    rs = rows(per_istiod, revision)
    if wide:
        add_propagation(rs, slis)
    typer.echo(json.dumps(rs, indent=2) + "\n" if output == "json" else table(rs, wide), nl=False)
    if problems or not per_istiod:
        raise typer.Exit(1)
