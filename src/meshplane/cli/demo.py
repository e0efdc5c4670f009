"""`meshplane demo`: two dev clusters, one merged kubeconfig, `kubectl get ns` on both.

An interim demo until the lab exists: it starts cluster1 and cluster2 in the background under
./.lab/, writes ./.lab/kubeconfig with contexts cluster1 and cluster2, shows them, and stops the
clusters by PID.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from meshplane.cli import common
from meshplane.devcluster import kubeconfig, launcher
from meshplane.runtime import logging as mlogging

CLUSTERS = ("cluster1", "cluster2")


def demo(
    lab_dir: Annotated[Path, typer.Option("--lab-dir", help="where clusters keep state and logs")] = Path(
        ".lab"
    ),
    keep: Annotated[bool, typer.Option("--keep/--stop", help="leave the clusters running")] = False,
) -> None:
    """Start two dev clusters, print the kubeconfig and contexts, and run `kubectl get ns` on both."""
    mlogging.setup("WARNING")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise common.fail("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    try:
        asyncio.run(_demo(lab_dir.resolve(), kubectl, keep, Console(soft_wrap=True)))
    except launcher.LaunchError as e:
        raise common.fail(str(e)) from e


async def _demo(lab: Path, kubectl: str, keep: bool, out: Console) -> None:
    started: list[launcher.Launched] = []
    try:
        results = await asyncio.gather(
            *(launcher.launch(name, lab, data_dir=lab / name) for name in CLUSTERS), return_exceptions=True
        )
        started.extend(r for r in results if isinstance(r, launcher.Launched))
        for r in results:
            if isinstance(r, BaseException):
                raise r
        for c in started:
            out.print(f"[green]started[/] {c.name} at {c.url} (pid {c.pid}, log {c.log})")
        configs = [yaml.safe_load(await asyncio.to_thread(c.kubeconfig.read_text)) for c in started]
        merged = kubeconfig.merge(configs, current=CLUSTERS[0])
        path = lab / "kubeconfig"
        await asyncio.to_thread(_write_private, path, kubeconfig.dump(merged))
        out.print(f"\n[bold]kubeconfig[/] written to {path} (tokens and CA data elided here):\n")
        out.print(kubeconfig.dump(_redacted(merged)), markup=False, highlight=False)
        out.print("[bold]contexts:[/] " + ", ".join(c["name"] for c in merged["contexts"]) + "\n")
        for name in CLUSTERS:
            args = [kubectl, "--kubeconfig", str(path), "--context", name, "get", "ns"]
            out.print(f"[bold]$ kubectl --context {name} get ns[/]")
            proc = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            text, _ = await proc.communicate()
            out.print(text.decode(errors="replace"), markup=False, highlight=False)
            if proc.returncode != 0:
                raise launcher.LaunchError(f"kubectl failed against {name}")
        if keep:
            out.print(
                f"clusters left running: {', '.join(f'{c.name} (pid {c.pid})' for c in started)}; "
                f"export KUBECONFIG={path}"
            )
            started.clear()
    finally:
        for c in started:
            await launcher.stop(c)
            out.print(f"[yellow]stopped[/] {c.name} (pid {c.pid})")


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def _redacted(cfg: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    for c in out["clusters"]:
        c["cluster"]["certificate-authority-data"] = "<elided>"
    for u in out["users"]:
        u["user"]["token"] = "<elided>"
    return dict(out)
