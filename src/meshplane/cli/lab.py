"""`meshplane lab …`: two dev clusters and their node runtimes on one machine (see meshplane.lab)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from meshplane.cli import common
from meshplane.lab import node as node_mod
from meshplane.runtime import logging as mlogging

app = typer.Typer(help="The lab: the guide's two clusters on one machine.", no_args_is_help=True)

DirOpt = Annotated[Path, typer.Option("--dir", help="the lab's folder (state, logs, kubeconfig)")]


@app.command()
def node(
    name: Annotated[str, typer.Option("--name", help="the cluster this node runtime serves")],
    kubeconfig: Annotated[Path, typer.Option("--kubeconfig", help="kubeconfig of that cluster")],
    directory: Annotated[Path, typer.Option("--dir", help="the node's folder (pods, hosts file)")],
    pod_cidr: Annotated[str, typer.Option("--pod-cidr", help="pod IPs (loopback)")] = "127.0.1.0/24",
    local_cidr: Annotated[
        str | None,
        typer.Option("--local-cidr", help="pod-local addresses (default: pod range's 2nd octet + 1)"),
    ] = None,
    lb_cidr: Annotated[str, typer.Option("--lb-cidr", help="LoadBalancer addresses, shared by the lab")] = (
        "127.0.3.0/24"
    ),
    lb_claims: Annotated[
        Path | None, typer.Option("--lb-claims", help="folder the lab's nodes claim LB addresses in")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context")] = None,
    region: Annotated[
        str, typer.Option("--region", help="the node's topology.kubernetes.io/region")
    ] = "region1",
    zone: Annotated[str | None, typer.Option("--zone", help="the node's zone (default: <name>-zone)")] = None,
    backoff: Annotated[
        float, typer.Option("--restart-backoff", help="first container restart delay (s)")
    ] = 1.0,
    backoff_max: Annotated[
        float, typer.Option("--restart-backoff-max", help="longest restart delay (s)")
    ] = 60.0,
    termination_delay: Annotated[
        float,
        typer.Option("--termination-delay", help="seconds a deleted endpoint keeps serving before SIGTERM"),
    ] = 1.0,
) -> None:
    """Run one lab cluster's node: controllers, scheduler, kubelet, EndpointSlices, kube-proxy, DNS,
    LoadBalancers. Prints `ready NODE` once it serves; SIGTERM stops every process it started."""
    mlogging.setup()
    directory = directory.resolve()
    try:
        options = node_mod.NodeOptions(
            cluster=name,
            kubeconfig=kubeconfig,
            context=context,
            dir=directory,
            pod_cidr=pod_cidr,
            local_cidr=local_cidr or _default_local(pod_cidr),
            lb_cidr=lb_cidr,
            lb_claims=(lb_claims or directory / "lb-claims").resolve(),
            region=region,
            zone=zone or f"{name}-zone",
            backoff_initial=backoff,
            backoff_max=backoff_max,
            termination_delay=termination_delay,
        )
        runtime = node_mod.NodeRuntime(options)
    except ValueError as e:
        raise common.fail(str(e)) from e
    asyncio.run(_run_node(runtime))


def _default_local(pod_cidr: str) -> str:
    from meshplane.lab import addresses

    try:
        return addresses.default_local_cidr(pod_cidr)
    except ValueError as e:
        raise common.fail(str(e)) from e


async def _run_node(runtime: node_mod.NodeRuntime) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        start = asyncio.ensure_future(runtime.start())
        waiter = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if start in done:
            start.result()
            sys.stdout.write(f"ready {runtime.o.node_name}\n")
            sys.stdout.flush()
            await waiter
        else:
            start.cancel()
            with contextlib.suppress(BaseException):
                await start
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        await runtime.stop()
