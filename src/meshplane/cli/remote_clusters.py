"""`meshplane remote-clusters`: the clusters each control plane watches, as `istioctl remote-clusters`
prints them (NAME SECRET STATUS ISTIOD REVISION), read from every istiod's `/debug/clusterz`."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import aiohttp
import typer

from meshplane.cli import common
from meshplane.server import errors, proxystatus


async def _clusterz(session: aiohttp.ClientSession, base_url: str) -> list[dict[str, Any]]:
    url = base_url.rstrip("/") + "/debug/clusterz"
    try:
        async with session.get(url) as r:
            if r.status != 200:
                raise errors.SyncStatusError(f"{url}: HTTP {r.status}")
            data = json.loads(await r.text())
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        raise errors.SyncStatusError(f"{url}: {e or type(e).__name__}") from e
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise errors.SyncStatusError(f"{url}: /debug/clusterz is not a JSON list of objects")
    return data


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
    header = ["NAME", "SECRET", "STATUS", "ISTIOD", "REVISION"]
    lines = [header] + [[r["name"], r["secret"], r["status"], r["istiod"], r["revision"]] for r in rs]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join(
        "     ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
    errors_ = [f"  {r['name']} ({r['secret']}): {r['error']}" for r in rs if r.get("error")]
    return text + "\n" + ("\nErrors:\n" + "\n".join(errors_) + "\n" if errors_ else "")


async def _collect(
    urls: list[str], namespace: str, context: str | None, kubeconfig: str | None
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    if urls:
        targets = [(proxystatus.url_label(u), proxystatus.check_url(u)) for u in urls]
    else:
        kc, ctx = common.kube_target(context, kubeconfig)
        targets = await proxystatus.discover(kc, ctx, namespace)
        if not targets:
            raise errors.SyncStatusError(
                f"no running istiod pods (label app=istiod) in namespace {namespace}"
            )
    out: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        results = await asyncio.gather(*(_clusterz(session, u) for _, u in targets), return_exceptions=True)
    for (label, _), result in zip(targets, results, strict=True):
        if isinstance(result, errors.SyncStatusError):
            problems.append(str(result))
        elif isinstance(result, BaseException):
            raise result
        else:
            out[label] = result
    return out, problems


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
    try:
        per_istiod, problems = asyncio.run(_collect(istiod_url or [], istio_namespace, context, kubeconfig))
    except errors.SyncStatusError as e:
        raise common.fail(str(e)) from e
    for p in problems:
        typer.secho(f"Error: {p}", fg=typer.colors.RED, err=True)
    rs = rows(per_istiod, revision)
    typer.echo(json.dumps(rs, indent=2) + "\n" if output == "json" else table(rs), nl=False)
    if problems or not per_istiod:
        raise typer.Exit(1)
