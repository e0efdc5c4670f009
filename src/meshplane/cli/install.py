"""`meshplane install`, `uninstall` and `manifest generate`: istioctl's install commands.

Flags as istioctl's (`-f FILE|-`, `--set PATH=VALUE`, `-y`, `--dry-run`, `--readiness-timeout`,
`-r/--revision`); `-o yaml|json` prints a dry run; `--wait/--no-wait` (a meshplane addition, wait by
default) skips waiting for readiness, which a dev cluster without the lab's node runtime never reaches.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from meshplane import __version__
from meshplane.cli import common
from meshplane.installer import (
    apply,
    config,
    errors,
    kubeclient,
    labels,
    manifest,
    plan,
    readiness,
    render,
    uninstall,
)
from meshplane.runtime import durations

app = typer.Typer(help="Generate install manifests.", no_args_is_help=True)

FilesOpt = Annotated[
    list[str] | None, typer.Option("--filename", "-f", help="IstioOperator file, or - for stdin (repeatable)")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="override a value: PATH=VALUE (repeatable)")
]
RevisionOpt = Annotated[str, typer.Option("--revision", "-r", help="control plane revision")]
YesOpt = Annotated[bool, typer.Option("--skip-confirmation", "-y", help="do not ask for confirmation")]

COMPONENT_NAMES = {
    labels.BASE: "Istio core",
    labels.PILOT: "Istiod",
    labels.INGRESS: "Ingress gateways",
    labels.EGRESS: "Egress gateways",
}


def parse_duration(text: str) -> float:
    """Go-style durations (`5m`, `90s`, `1m30s`, `250ms`) or plain seconds, in seconds."""
    bad = typer.BadParameter(f"{text.strip()!r} is not a duration (e.g. 300s, 5m, 1m30s)")
    try:
        seconds = durations.parse(text)
    except ValueError as e:
        raise bad from e
    if seconds < 0:
        raise bad
    return seconds


def _read_sources(files: Sequence[str]) -> list[tuple[str, bytes]]:
    sources: list[tuple[str, bytes]] = []
    stdin_used = False
    for name in files:
        if name == "-":
            if stdin_used:
                raise common.fail("-f - can be given only once")
            stdin_used = True
            sources.append(("<stdin>", sys.stdin.buffer.read()))
            continue
        try:
            sources.append((name, Path(name).read_bytes()))
        except OSError as e:
            raise common.fail(f"cannot read {name}: {e.strerror}") from e
    return sources


def load_config(files: Sequence[str], sets: Sequence[str], revision: str) -> config.InstallConfig:
    try:
        return config.load(_read_sources(files), sets, revision or None)
    except errors.ConfigError as e:
        err = common.console(stderr=True)
        err.print(
            "[red]Error:[/red] the install configuration is invalid; nothing was applied:", highlight=False
        )
        for issue in e.issues:
            err.print(f"  {issue}", highlight=False, markup=False)
        raise typer.Exit(1) from e


def _components(objs: Sequence[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for o in objs:
        comp = (o["metadata"].get("labels") or {}).get(labels.COMPONENT)
        if comp and comp not in seen:
            seen.append(comp)
    return seen


def _print_objects(objs: Sequence[dict[str, Any]], output: str) -> None:
    if output == "json":
        typer.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}, indent=2))
    else:
        typer.echo(manifest.to_yaml(objs), nl=False)


def _confirm(question: str) -> bool:
    typer.echo(f"{question} (y/N) ", nl=False, err=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


async def _install(
    cfg: config.InstallConfig,
    kube: Any,
    dry_run: bool,
    output: str,
    yes: bool,
    wait: bool,
    ready_within: float,
    err: Console,
) -> None:
    client = kubeclient.client(kube)
    try:
        applier = apply.Applier(client)
        objs = await plan.objects(applier, cfg)
        if dry_run:
            _print_objects(objs, output)
            return
        comps = ", ".join(COMPONENT_NAMES.get(c, c) for c in _components(objs)) or "nothing"
        question = (
            f'This will install the meshplane {__version__} "{cfg.profile}" profile '
            f"(with components: {comps}) into the cluster {kubeclient.describe(kube)}. Proceed?"
        )
        if not yes and not _confirm(question):
            err.print("Cancelled.")
            raise typer.Exit(1)
        by_comp: dict[str, list[dict[str, Any]]] = {}
        for o in objs:
            by_comp.setdefault((o["metadata"].get("labels") or {}).get(labels.COMPONENT, ""), []).append(o)
        with err.status("Applying") as status:

            def progress(what: str, action: str) -> None:
                status.update(f"Applying {what}")
                if action != apply.UNCHANGED:
                    err.print(f"  {action} {what}", highlight=False)

            result = await applier.apply(objs, progress)
        for comp in _components(objs):
            err.print(f"[green]✔[/green] {COMPONENT_NAMES.get(comp, comp)} installed")
        err.print(
            f"  {result.count(apply.CREATED)} created, {result.count(apply.UPDATED)} updated, "
            f"{result.count(apply.UNCHANGED)} unchanged",
            highlight=False,
        )
        if wait and readiness.watched(objs):
            with err.status("Waiting for resources to become ready") as status:

                def waiting(pending: Sequence[str]) -> None:
                    status.update("Waiting for: " + ", ".join(pending))

                await readiness.wait_ready(client, objs, ready_within, waiting=waiting)
        err.print("[green]✔[/green] Installation complete")
    finally:
        await client.close()


def install(
    filename: FilesOpt = None,
    set_: SetOpt = None,
    revision: RevisionOpt = "",
    yes: YesOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print what would be applied; apply nothing")
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="dry-run output: yaml or json")] = "yaml",
    readiness_timeout: Annotated[
        str, typer.Option("--readiness-timeout", help="maximum time to wait for resources to be ready")
    ] = "300s",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait for readiness after applying")] = True,
    context: common.ContextOpt = None,
    kubeconfig: common.KubeconfigOpt = None,
) -> None:
    """Apply an IstioOperator configuration to a cluster (istioctl install)."""
    if output not in ("yaml", "json"):
        raise common.fail(f"--output must be yaml or json, not {output!r}")
    timeout = parse_duration(readiness_timeout)
    cfg = load_config(filename or [], set_ or [], revision)
    err = common.console(stderr=True)
    try:
        kube = kubeclient.load(*common.kube_target(context, kubeconfig))
        asyncio.run(_install(cfg, kube, dry_run, output, yes, wait, timeout, err))
    except errors.ReadinessTimeout as e:
        raise common.fail(f"{e}\n(the objects were applied; rerun to wait again, or pass --no-wait)") from e
    except errors.InstallError as e:
        raise common.fail(str(e)) from e


async def _uninstall(kube: Any, targets_of: Any, question: str, yes: bool, err: Console) -> None:
    client = kubeclient.client(kube)
    try:
        targets = await targets_of(client)
        if not targets:
            err.print("Nothing to remove: no installed resources found.")
            return
        for _, t in targets:
            err.print(f"  will remove {t}", highlight=False)
        if not yes and not _confirm(question):
            err.print("Cancelled.")
            raise typer.Exit(1)
        done = await uninstall.delete(
            client, targets, lambda what: err.print(f"  removed {what}", highlight=False)
        )
        with err.status("Waiting for the deleted resources to go"):
            await uninstall.wait_gone(client, targets)
        err.print(f"[green]✔[/green] Uninstall complete ({len(done)} removed)")
    finally:
        await client.close()


def uninstall_cmd(
    purge: Annotated[
        bool, typer.Option("--purge", help="remove every installed resource, CRDs included")
    ] = False,
    filename: FilesOpt = None,
    set_: SetOpt = None,
    revision: RevisionOpt = "",
    yes: YesOpt = False,
    context: common.ContextOpt = None,
    kubeconfig: common.KubeconfigOpt = None,
) -> None:
    """Remove what meshplane (or istioctl) installed (istioctl uninstall)."""
    err = common.console(stderr=True)
    if not (purge or filename or revision):
        raise common.fail("at least one of the --revision, --filename or --purge flags must be set")
    if purge and (filename or revision):
        err.print("[yellow]Warning:[/yellow] --filename and --revision are ignored with --purge")
    if purge:
        question = "All Istio resources will be pruned from the cluster\nProceed?"

        async def targets_of(client: Any) -> Any:
            return await uninstall.purge_targets(client)

    elif filename:
        cfg = load_config(filename, set_ or [], revision)
        question = f'Removing the components of the "{cfg.profile}" install (CRDs are kept). Proceed?'

        async def targets_of(client: Any) -> Any:
            return await uninstall.install_targets(client, render.render(cfg))

    else:
        question = f"Removing revision {revision!r} (CRDs are kept). Proceed?"

        async def targets_of(client: Any) -> Any:
            return await uninstall.revision_targets(client, revision)

    try:
        kube = kubeclient.load(*common.kube_target(context, kubeconfig))
        asyncio.run(_uninstall(kube, targets_of, question, yes, err))
    except errors.InstallError as e:
        raise common.fail(str(e)) from e


@app.command("generate")
def generate(filename: FilesOpt = None, set_: SetOpt = None, revision: RevisionOpt = "") -> None:
    """Print the manifest an install would apply (no cluster is contacted)."""
    cfg = load_config(filename or [], set_ or [], revision)
    typer.echo(manifest.to_yaml(render.render(cfg)), nl=False)


def register(root: typer.Typer) -> None:
    root.command("install")(install)
    root.command("uninstall")(uninstall_cmd)
    root.add_typer(app, name="manifest")
