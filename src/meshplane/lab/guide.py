"""`meshplane lab guide`: the primary-remote install guide, performed with the commands a user
types (reference/install-primary-remote.txt, with `meshplane` for `istioctl`).

Each step prints its commands before running them (`$ …`), their output indented, and the step's
time. Commands run in the lab folder through bash with KUBECONFIG, CTX_CLUSTER1 and CTX_CLUSTER2
set and meshplane's own `bin/` first on PATH; `samples/` there links to the repository's samples,
so every command reads exactly as in the guide. The guide can be run again on a lab where it
already ran: installs re-apply, and the two commands that would fail on a second run (creating
cluster2's istio-system namespace, annotating it) tolerate what is already there.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLUSTER1_YAML = """apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  values:
    global:
      meshID: mesh1
      multiCluster:
        clusterName: cluster1
      network: network1
"""

CLUSTER2_YAML = """apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  profile: remote
  values:
    istiodRemote:
      injectionPath: /inject/cluster/cluster2/net/network1
    global:
      remotePilotAddress: ${DISCOVERY_ADDRESS}
"""

EW_LB_IP = (
    'kubectl --context="${CTX_CLUSTER1}" -n istio-system get svc istio-eastwestgateway '
    "-o jsonpath='{.status.loadBalancer.ingress[0].ip}'"
)


@dataclass(frozen=True, slots=True)
class Step:
    title: str
    commands: tuple[str, ...]
    # a command polled (every second, up to `timeout`) until it prints something, before `commands`
    wait_for: str = ""
    timeout: float = 180.0


def heredoc(path: str, body: str, quoted: bool = False) -> str:
    """`cat <<EOF > path` as the guide writes it (quoted: no $ expansion)."""
    marker = "'EOF'" if quoted else "EOF"
    return f"cat <<{marker} > {path}\n{body}EOF"


STEPS: tuple[Step, ...] = (
    Step("Configure cluster1 as a primary", (heredoc("cluster1.yaml", CLUSTER1_YAML),)),
    Step(
        "Apply the configuration to cluster1",
        (
            "meshplane install --set values.pilot.env.EXTERNAL_ISTIOD=true "
            '--context="${CTX_CLUSTER1}" -y -f cluster1.yaml',
        ),
    ),
    Step(
        "Install the east-west gateway in cluster1",
        (
            "samples/multicluster/gen-eastwest-gateway.sh --mesh mesh1 --cluster cluster1 "
            '--network network1 | meshplane --context="${CTX_CLUSTER1}" install -y -f -',
        ),
    ),
    Step(
        "Wait for the east-west gateway to be assigned an external IP address",
        ('kubectl --context="${CTX_CLUSTER1}" get svc istio-eastwestgateway -n istio-system',),
        wait_for=EW_LB_IP,
    ),
    Step(
        "Expose the control plane in cluster1",
        (
            'kubectl apply --context="${CTX_CLUSTER1}" -n istio-system '
            "-f samples/multicluster/expose-istiod.yaml",
        ),
    ),
    Step(
        "Set the control plane cluster for cluster2",
        (
            'kubectl --context="${CTX_CLUSTER2}" create namespace istio-system '
            '|| kubectl --context="${CTX_CLUSTER2}" get namespace istio-system',
            'kubectl --context="${CTX_CLUSTER2}" annotate namespace istio-system '
            "topology.istio.io/controlPlaneClusters=cluster1 --overwrite",
        ),
    ),
    Step(
        "Configure cluster2 as a remote",
        (f"export DISCOVERY_ADDRESS=$({EW_LB_IP})\n" + heredoc("cluster2.yaml", CLUSTER2_YAML),),
    ),
    Step(
        "Apply the configuration to cluster2",
        ('meshplane install --context="${CTX_CLUSTER2}" -y -f cluster2.yaml',),
    ),
    Step(
        "Attach cluster2 as a remote cluster of cluster1",
        (
            'meshplane create-remote-secret --context="${CTX_CLUSTER2}" --name=cluster2 | '
            'kubectl apply -f - --context="${CTX_CLUSTER1}"',
        ),
    ),
)


@dataclass(slots=True)
class StepResult:
    title: str
    seconds: float
    ok: bool
    output: list[str] = field(default_factory=list)


def command_env(lab_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["KUBECONFIG"] = str(lab_dir / "kubeconfig")
    env["CTX_CLUSTER1"], env["CTX_CLUSTER2"] = "cluster1", "cluster2"
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")])
    return env


def link_samples(lab_dir: Path, samples: Path) -> None:
    """DIR/samples → the repository's samples, so the guide's relative paths work (blocking)."""
    link = lab_dir / "samples"
    if link.is_symlink() and Path(os.readlink(link)) == samples:
        return
    if link.is_symlink():
        link.unlink()
    link.symlink_to(samples, target_is_directory=True)


async def sh(
    script: str, cwd: Path, env: dict[str, str], echo: Callable[[str], None]
) -> tuple[int, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        "bash", "-eo", "pipefail", "-c", script,
        cwd=str(cwd), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    while line := await proc.stdout.readline():
        text = line.decode(errors="replace").rstrip("\n")
        lines.append(text)
        echo(text)
    return await proc.wait(), lines


async def run(
    steps: Sequence[Step],
    lab_dir: Path,
    env: dict[str, str],
    say: Callable[[str], None],
    echo: Callable[[str], None],
    shared: Sequence[str] = (),
) -> list[StepResult]:
    """Run the steps in order, stopping at the first failure. `shared` lines (exports) are carried
    into every later command, as in one shell session."""
    results: list[StepResult] = []
    carried = list(shared)
    for i, step in enumerate(steps, 1):
        say(f"[{i}/{len(steps)}] {step.title}")
        start = time.monotonic()
        ok = True
        output: list[str] = []
        if step.wait_for:
            say(f"$ {step.wait_for}   # repeated until it prints an address")
            deadline = start + step.timeout
            while True:
                code, lines = await sh("\n".join([*carried, step.wait_for]), lab_dir, env, lambda _: None)
                if code == 0 and "".join(lines).strip():
                    break
                if time.monotonic() >= deadline:
                    ok = False
                    output.append(f"timed out after {step.timeout:.0f}s")
                    break
                await asyncio.sleep(1.0)
        for cmd in step.commands if ok else ():
            for n, line in enumerate(cmd.splitlines()):
                say(f"{'$' if n == 0 or line.startswith('export ') else ' '} {line}")
            code, lines = await sh("\n".join([*carried, cmd]), lab_dir, env, echo)
            output.extend(lines)
            carried.extend(line for line in cmd.splitlines() if line.startswith("export "))
            if code != 0:
                ok = False
                break
        results.append(StepResult(step.title, time.monotonic() - start, ok, output))
        say(f"    {'done' if ok else 'FAILED'} in {time.monotonic() - start:.1f}s")
        if not ok:
            break
    return results
