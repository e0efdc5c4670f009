"""`meshplane devcluster serve`: an embedded Kubernetes-API-compatible server for one machine."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from meshplane.cli import common
from meshplane.devcluster import app as devcluster_app
from meshplane.devcluster.api import context
from meshplane.runtime import logging as mlogging
from meshplane.runtime import signals

app = typer.Typer(help="Run a local Kubernetes-API-compatible dev cluster.", no_args_is_help=True)


@app.command()
def serve(
    name: Annotated[str, typer.Option("--name", help="cluster name (kubeconfig cluster/user/context)")],
    host: Annotated[str, typer.Option("--host", help="address to listen on (loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port, 0 for any free port")] = 0,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="keep state here (SQLite, CA, token)")
    ] = None,
    kubeconfig_out: Annotated[
        Path | None, typer.Option("--kubeconfig-out", help="write a kubeconfig here")
    ] = None,
    service_cidr: Annotated[str, typer.Option("--service-cidr", help="ClusterIP range")] = "10.96.0.0/16",
    bookmark_interval: Annotated[
        float, typer.Option("--bookmark-interval", help="seconds between watch bookmarks")
    ] = 60.0,
    watch_history: Annotated[
        int, typer.Option("--watch-history", help="events kept for watches resuming from an RV")
    ] = 10000,
) -> None:
    """Serve the Kubernetes API over HTTPS; print `ready https://HOST:PORT` once it accepts requests."""
    mlogging.setup()
    if not name or "/" in name:
        raise common.fail(f"invalid cluster name {name!r}")
    if not 0 <= port <= 65535:
        raise common.fail(f"invalid port {port}")
    if watch_history < 1 or bookmark_interval <= 0:
        raise common.fail("--watch-history must be >= 1 and --bookmark-interval > 0")
    settings = context.Settings(bookmark_interval=bookmark_interval, history_size=watch_history)
    try:
        cluster = devcluster_app.DevCluster(
            name=name, data_dir=data_dir, host=host, port=port, service_cidr=service_cidr, settings=settings
        )
    except ValueError as e:
        raise common.fail(str(e)) from e
    try:
        asyncio.run(_serve(cluster, kubeconfig_out))
    except OSError as e:
        raise common.fail(f"cannot serve on {host}:{port}: {e}") from e


async def _serve(cluster: devcluster_app.DevCluster, kubeconfig_out: Path | None) -> None:
    stop = signals.StopOnSignal()
    await cluster.start()
    try:
        if kubeconfig_out is not None:
            await asyncio.to_thread(cluster.write_kubeconfig, kubeconfig_out)
        sys.stdout.write(f"ready {cluster.url}\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        stop.close()
        await cluster.stop()
