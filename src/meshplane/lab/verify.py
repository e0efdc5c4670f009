"""`meshplane lab verify`: the guide's "verify the installation" (SPEC §8) on the lab.

In both clusters: namespace `sample` labelled `istio-injection=enabled`, the helloworld Service,
helloworld v1 in cluster1 and v2 in cluster2, and the sleep sample; every command printed before it
runs (the same runner as the guide). Then 20 requests from each cluster's sleep pod to
`helloworld.sample:5000/hello`, sent as `meshplane lab exec` sends them (through the pod's
sidecar), with every answer printed. The verdict: each side must have seen both versions.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshplane.lab import addresses, execreq, guide, launcher, podexec
from meshplane.lab.network import plan as netplan
from meshplane.lab.node import podspec

URL = "helloworld.sample:5000/hello"
VERSION = re.compile(r"Hello version: (v\d+), instance: (\S+)")


def setup_steps(ready_timeout: int) -> tuple[guide.Step, ...]:
    def both(cmd: str) -> tuple[str, ...]:
        return tuple(cmd.replace("CTX", f"${{CTX_CLUSTER{i}}}").replace("{v}", f"v{i}") for i in (1, 2))

    hello = "samples/helloworld/helloworld.yaml"
    return (
        guide.Step(
            "Create the sample namespace with sidecar injection in both clusters",
            both(
                'kubectl create --context="CTX" namespace sample '
                '|| kubectl get --context="CTX" namespace sample'
            )
            + both('kubectl label --context="CTX" namespace sample istio-injection=enabled --overwrite'),
        ),
        guide.Step(
            "Deploy the helloworld Service in both clusters",
            both(f'kubectl apply --context="CTX" -f {hello} -l service=helloworld -n sample'),
        ),
        guide.Step(
            "Deploy helloworld v1 in cluster1 and v2 in cluster2",
            (
                f'kubectl apply --context="${{CTX_CLUSTER1}}" -f {hello} -l version=v1 -n sample',
                f'kubectl apply --context="${{CTX_CLUSTER2}}" -f {hello} -l version=v2 -n sample',
            ),
        ),
        guide.Step(
            "Deploy sleep in both clusters",
            both('kubectl apply --context="CTX" -f samples/sleep/sleep.yaml -n sample'),
        ),
        guide.Step(
            "Wait for the pods (READY 2/2 with their sidecars)",
            both(
                'kubectl wait --context="CTX" -n sample --for=condition=Available deployment '
                f"helloworld-{{v}} sleep --timeout={ready_timeout}s"
            )
            + both('kubectl get pod --context="CTX" -n sample'),
        ),
    )


@dataclass(slots=True)
class Side:
    cluster: str
    pod: str = ""
    sidecar: bool = False
    versions: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return {"v1", "v2"} <= set(self.versions)


def tally(answer: str) -> str | None:
    m = VERSION.search(answer)
    return m.group(1) if m else None


def verdict(sides: list[Side]) -> tuple[bool, list[str]]:
    lines = []
    for s in sides:
        seen = ", ".join(f"{v}×{n}" for v, n in sorted(s.versions.items())) or "nothing"
        why = "" if s.ok else "  <- expected both v1 and v2"
        note = "" if s.sidecar else " (no sidecar: not in the mesh)"
        lines.append(f"{s.cluster}: {s.pod}{note} saw {seen}{why}")
        if s.errors:
            lines.append(f"{s.cluster}: {len(s.errors)} failed request(s), first: {s.errors[0]}")
    return all(s.ok for s in sides), lines


async def requests_from(
    paths: launcher.LabPaths,
    plan: launcher.ClusterPlan,
    pod: dict[str, Any],
    n: int,
    say: Callable[[str], None],
    network: netplan.NetworkPlan | None = None,
) -> Side:
    name = str(podspec.meta(pod).get("name"))
    side = Side(plan.name, name, podspec.has_sidecar(pod))
    say(f"$ meshplane lab exec --context {plan.name} -n sample {name} -c sleep -- curl -sS {URL}   # x{n}")
    curl = execreq.parse_curl(["curl", "-sS", URL])
    local = addresses.default_local_cidr(plan.pod_cidr) if network is None else ""
    for _ in range(n):
        if network is not None:  # the real curl, in the pod's network namespace
            done = await podexec.run(network, pod, "sleep", ["curl", "-sS", "--max-time", "10", URL])
            code, body, error = done.code, done.out, done.err.decode(errors="replace").strip()
        else:
            result = await execreq.run(pod, curl, paths.hosts(plan.name), plan.pod_cidr, local)
            code, body, error = result.exit_code, result.body, f"curl: ({result.exit_code}) {result.error}"
        text = body.decode(errors="replace").strip()
        if code:
            side.errors.append(error)
            say(f"  {error}")
            continue
        say(f"  {text}")
        version = tally(text)
        if version:
            side.versions[version] += 1
    return side


def sleep_pod(pods_json: str) -> dict[str, Any] | None:
    items = [
        p for p in json.loads(pods_json).get("items") or [] if not podspec.meta(p).get("deletionTimestamp")
    ]
    return items[0] if items else None


async def run(
    lab_dir: Path,
    say: Callable[[str], None],
    echo: Callable[[str], None],
    n: int = 20,
    ready_timeout: int = 180,
) -> tuple[bool, list[str]]:
    paths = launcher.LabPaths(lab_dir)
    state = launcher.load_state(paths)
    network = netplan.load(paths.network_plan) if state.network == launcher.NETNS else None
    env = guide.command_env(lab_dir)
    results = await guide.run(setup_steps(ready_timeout), lab_dir, env, say, echo)
    if not all(r.ok for r in results):
        return False, [f"setup failed at: {results[-1].title}"]
    sides: list[Side] = []
    for plan in state.plans():
        code, lines = await guide.sh(
            f'kubectl get pod --context="{plan.name}" -n sample -l app=sleep -o json',
            lab_dir,
            env,
            lambda _: None,
        )
        pod = sleep_pod("\n".join(lines)) if code == 0 else None
        if pod is None:
            sides.append(Side(plan.name, errors=["no sleep pod"]))
            continue
        sides.append(await requests_from(paths, plan, pod, n, say, network))
    return verdict(sides)
