"""`meshplane lab …`: two dev clusters and their node runtimes on one machine (see meshplane.lab)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from meshplane.cli import common
from meshplane.lab.node import app as node_mod
from meshplane.runtime import logging as mlogging
from meshplane.runtime import signals

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
    network_plan: Annotated[
        Path | None,
        typer.Option("--network-plan", help="netns mode: the lab's network plan (written by `lab up`)"),
    ] = None,
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
            local_cidr=local_cidr or ("" if network_plan else _default_local(pod_cidr)),
            lb_cidr=lb_cidr,
            lb_claims=(lb_claims or directory / "lb-claims").resolve(),
            region=region,
            zone=zone or f"{name}-zone",
            backoff_initial=backoff,
            backoff_max=backoff_max,
            termination_delay=termination_delay,
            network_plan=network_plan.resolve() if network_plan else None,
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
    stop = signals.StopOnSignal()
    try:
        start = asyncio.ensure_future(runtime.start())
        waiter = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if start in done:
            start.result()
            sys.stdout.write(f"ready {runtime.options.node_name}\n")
            sys.stdout.flush()
            await waiter
        else:
            start.cancel()
            with contextlib.suppress(BaseException):
                await start
    finally:
        stop.close()
        await runtime.stop()


DEFAULT_DIR = Path(".lab")


@app.command()
def up(
    directory: DirOpt = DEFAULT_DIR,
    address_base: Annotated[
        int | None,
        typer.Option(
            "--address-base", help="loopback mode: put the lab on 127.N.* (default 0; another lab: 100)"
        ),
    ] = None,
    network: Annotated[
        str,
        typer.Option(
            "--network",
            help="netns: every pod in its own network namespace on the lab's bridges; loopback: pods "
            "share the host's loopback; auto (default): netns when this process may make namespaces",
        ),
    ] = "auto",
    range_: Annotated[
        list[str] | None,
        typer.Option(
            "--range",
            help="netns mode: CLUSTER.KIND=CIDR (KIND pods, services or loadBalancers), e.g. "
            "cluster1.pods=198.18.1.0/24; checked against the host's routes",
        ),
    ] = None,
) -> None:
    """Start both dev clusters and their node runtimes in the background (or reuse what runs)."""
    from meshplane.lab import errors, launcher
    from meshplane.lab.network import plan as netplan

    mlogging.setup("WARNING")
    try:
        overrides: dict[str, dict[str, str]] = {}
        for text in range_ or []:
            cluster, kind, cidr = netplan.parse_override(text)
            overrides.setdefault(cluster, {})[kind] = cidr
        state = launcher.up(directory, address_base, network, overrides)
    except (errors.LabError, OSError, ValueError) as e:
        raise common.fail(str(e)) from e
    paths = launcher.LabPaths(directory.resolve())
    typer.echo(network_line(state), err=True)
    for cluster, role, pid, what in launcher.summary_rows(state):
        typer.echo(f"{cluster:10} {role:5} pid {pid:8} {what}", err=True)
    typer.echo(f"export KUBECONFIG={paths.kubeconfig} CTX_CLUSTER1=cluster1 CTX_CLUSTER2=cluster2")


def network_line(state: Any) -> str:
    if state.network == "netns":
        return "network    netns: each pod in its own network namespace, traffic captured by istio-init"
    why = f" ({state.network_note}: fell back)" if state.network_note else ""
    return f"network    loopback: pods share the host's loopback, sidecars are explicit proxies{why}"


@app.command()
def down(directory: DirOpt = DEFAULT_DIR) -> None:
    """Stop every process `lab up` started (pods included); the lab's data stays in DIR."""
    from meshplane.lab import launcher

    mlogging.setup("WARNING")
    for line in launcher.down(directory):
        typer.echo(f"stopped {line}")


@app.command()
def status(directory: DirOpt = DEFAULT_DIR) -> None:
    """The lab's processes, and the pods of each cluster with their readiness."""
    from meshplane.lab import kubeapi, launcher

    mlogging.setup("WARNING")
    state = launcher.status(directory)
    if not state.procs:
        typer.echo(f"no lab in {directory.resolve()} (run: meshplane lab up --dir {directory})")
        raise typer.Exit(1)
    typer.echo(network_line(state))
    for cluster, role, pid, what in launcher.summary_rows(state):
        typer.echo(f"{cluster:10} {role:5} pid {pid:8} {what}")
    paths = launcher.LabPaths(directory.resolve())
    for plan in state.plans():
        api = state.procs.get(plan.name, {}).get("api")
        if api is None or not api.alive:
            continue
        try:
            pods = asyncio.run(kubeapi.list_pods(paths.cluster_kubeconfig(plan.name)))
        except Exception as e:
            typer.echo(f"\n{plan.name}: cannot list pods: {e}")
            continue
        typer.echo(f"\n{plan.name}:")
        typer.echo(f"  {'NAMESPACE':16} {'NAME':44} {'READY':6} {'STATUS':18} {'RESTARTS':9} IP")
        for ns, name, ready, st, restarts, ip in launcher.pod_rows(pods):
            typer.echo(f"  {ns:16} {name:44} {ready:6} {st:18} {restarts:9} {ip}")


@app.command(name="exec", context_settings={"allow_interspersed_args": False})
def exec_(
    args: Annotated[list[str], typer.Argument(help="POD -- COMMAND [ARG…]", metavar="POD -- COMMAND [ARG…]")],
    context: Annotated[str, typer.Option("--context", help="cluster1 or cluster2")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="the pod's namespace")] = "default",
    container: Annotated[str | None, typer.Option("--container", "-c", help="a container of the pod")] = None,
    directory: DirOpt = DEFAULT_DIR,
) -> None:
    """Run a command in a pod, as `kubectl exec POD -- COMMAND` does. netns mode: any command, run
    inside the pod's network namespace as the container's user (its exit code is this command's).
    Loopback mode: only `curl [-sS] URL`, sent on the pod's behalf (through its sidecar)."""
    from meshplane.lab import errors, kubeapi, launcher, podexec
    from meshplane.lab.network import plan as netplan

    mlogging.setup("WARNING")
    if len(args) < 2 or args[0].startswith("-"):
        raise common.fail("usage: meshplane lab exec --context CTX [-n NS] [-c C] POD -- COMMAND [ARG…]", 2)
    pod_name, command = args[0], args[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    paths = launcher.LabPaths(directory.resolve())
    state = launcher.load_state(paths)
    plan = state.plan(context)
    if plan is None:
        raise common.fail(f"unknown context {context!r} (the lab has cluster1 and cluster2)", 2)
    try:
        pod = asyncio.run(kubeapi.get_pod(paths.cluster_kubeconfig(plan.name), namespace, pod_name))
    except Exception as e:
        raise common.fail(f'cannot get pod "{pod_name}" in {namespace} on {context}: {e}') from e
    try:
        podexec.container_of(pod, container)
        if state.network != launcher.NETNS:
            _curl_on_behalf(pod, command, paths, plan)
            return
        argv = podexec.argv(netplan.load(paths.network_plan), pod, container, command)
    except errors.LabError as e:
        raise common.fail(str(e), 2 if isinstance(e, errors.CurlUsage) else 1) from e
    code = subprocess.run(argv, env=podexec.env(pod), check=False).returncode
    raise typer.Exit(code)


def _curl_on_behalf(pod: dict[str, Any], command: list[str], paths: Any, plan: Any) -> None:
    from meshplane.lab import addresses, execreq

    curl = execreq.parse_curl(command)
    local_cidr = addresses.default_local_cidr(plan.pod_cidr)
    result = asyncio.run(execreq.run(pod, curl, paths.hosts(plan.name), plan.pod_cidr, local_cidr))
    if result.head and curl.include:
        typer.echo(result.head)
    if result.body:
        sys.stdout.buffer.write(result.body)
        sys.stdout.flush()
    if result.exit_code:
        typer.echo(f"curl: ({result.exit_code}) {result.error}", err=True)
        raise typer.Exit(result.exit_code)


def _samples_dir(given: Path | None) -> Path:
    import meshplane

    candidates = (
        [given]
        if given
        else [Path.cwd() / "samples", Path(meshplane.__file__).resolve().parents[2] / "samples"]
    )
    for c in candidates:
        if c is not None and (c / "helloworld" / "helloworld.yaml").is_file():
            return c.resolve()
    raise common.fail("cannot find the samples folder (pass --samples PATH)")


SamplesOpt = Annotated[Path | None, typer.Option("--samples", help="the samples folder (default: ./samples)")]


@app.command()
def guide(directory: DirOpt = DEFAULT_DIR, samples: SamplesOpt = None) -> None:
    """Perform the primary-remote install guide on the lab, printing each command before it runs."""
    from rich.console import Console

    from meshplane.lab import guide as guide_mod
    from meshplane.lab import launcher

    mlogging.setup("WARNING")
    paths = launcher.LabPaths(directory.resolve())
    if not launcher.load_state(paths).procs:
        raise common.fail(f"no lab in {paths.dir} (run: meshplane lab up --dir {directory})")
    guide_mod.link_samples(paths.dir, _samples_dir(samples))
    out = Console(highlight=False, soft_wrap=True)
    results = asyncio.run(
        guide_mod.run(
            guide_mod.STEPS,
            paths.dir,
            guide_mod.command_env(paths.dir),
            lambda s: out.print(s, markup=False, style="bold" if s.startswith("[") else None),
            lambda s: out.print(f"    {s}", markup=False, style="dim"),
        )
    )
    total = sum(r.seconds for r in results)
    if not all(r.ok for r in results) or len(results) != len(guide_mod.STEPS):
        raise common.fail(f"the guide stopped at: {results[-1].title} (after {total:.1f}s)")
    out.print(f"guide done in {total:.1f}s: cluster2 is attached to the control plane in cluster1")


@app.command()
def verify(
    directory: DirOpt = DEFAULT_DIR,
    samples: SamplesOpt = None,
    requests: Annotated[int, typer.Option("--requests", help="requests from each sleep pod")] = 20,
    timeout: Annotated[int, typer.Option("--timeout", help="seconds to wait for the sample pods")] = 180,
) -> None:
    """Deploy helloworld v1/v2 and sleep, send requests from each cluster's sleep pod through its
    sidecar, and fail unless both clusters reach both versions."""
    from rich.console import Console

    from meshplane.lab import guide as guide_mod
    from meshplane.lab import launcher
    from meshplane.lab import verify as verify_mod

    mlogging.setup("WARNING")
    if requests < 1 or timeout < 1:
        raise common.fail("--requests and --timeout must be positive", 2)
    paths = launcher.LabPaths(directory.resolve())
    if not launcher.load_state(paths).procs:
        raise common.fail(f"no lab in {paths.dir} (run: meshplane lab up --dir {directory})")
    guide_mod.link_samples(paths.dir, _samples_dir(samples))
    out = Console(highlight=False, soft_wrap=True)
    ok, lines = asyncio.run(
        verify_mod.run(
            paths.dir,
            lambda s: out.print(s, markup=False, style="bold" if s.startswith("[") else None),
            lambda s: out.print(f"    {s}", markup=False, style="dim"),
            requests,
            timeout,
        )
    )
    for line in lines:
        out.print(line, markup=False)
    if not ok:
        raise common.fail("verification failed: each cluster must reach both helloworld versions")
    out.print("verified: both clusters reach helloworld v1 and v2")
