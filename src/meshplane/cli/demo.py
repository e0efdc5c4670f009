"""`meshplane demo` (what `make demo` runs): the lab comes up, the install guide runs on it, the
guide's verification passes with real traffic, and a short summary says where everything is.

A second run reuses the running lab (and re-applies the guide, which changes nothing)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from meshplane.cli import lab as lab_cli


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="the lab's folder")] = lab_cli.DEFAULT_DIR,
    address_base: Annotated[
        int | None, typer.Option("--address-base", help="put the lab on 127.N.* (default 0)")
    ] = None,
    samples: lab_cli.SamplesOpt = None,
    network: Annotated[
        str, typer.Option("--network", help="netns, loopback or auto (see `meshplane lab up --help`)")
    ] = "auto",
    range_: Annotated[
        list[str] | None, typer.Option("--range", help="netns mode: CLUSTER.KIND=CIDR (see `lab up --help`)")
    ] = None,
) -> None:
    """Run the whole primary-remote guide on one machine: lab up, guide, verify, summary."""
    timings: list[tuple[str, float]] = []

    def phase(title: str, fn: object, *args: object, **kwargs: object) -> None:
        typer.secho(f"\n=== {title}", bold=True)
        start = time.monotonic()
        fn(*args, **kwargs)  # type: ignore[operator]
        timings.append((title, time.monotonic() - start))

    phase(
        "lab up: two dev clusters and their node runtimes",
        lab_cli.up,
        directory,
        address_base,
        network,
        range_,
    )
    phase("the install guide, command by command", lab_cli.guide, directory, samples)
    phase("verify the installation", lab_cli.verify, directory, samples, 20, 180)
    typer.secho("\n=== summary", bold=True)
    for title, seconds in timings:
        typer.echo(f"  {seconds:6.1f}s  {title}")
    lab_cli.status(directory)
    d = directory.resolve()
    typer.echo(
        "\nThe mesh is running. Try:\n"
        f"  export KUBECONFIG={d / 'kubeconfig'} CTX_CLUSTER1=cluster1 CTX_CLUSTER2=cluster2\n"
        "  meshplane remote-clusters --context cluster1\n"
        "  meshplane proxy-status --context cluster1\n"
        f"  meshplane lab exec --dir {directory} --context cluster2 -n sample "
        "$(kubectl --context cluster2 -n sample get pod -l app=sleep -o jsonpath='{.items[0].metadata.name}')"
        " -- curl -sS helloworld.sample:5000/hello\n"
        f"  meshplane lab down --dir {directory}   # stops everything"
    )
