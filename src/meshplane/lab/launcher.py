"""`meshplane lab up|down|status`: the lab's processes, started in the background and stopped by PID.

    DIR/
      lab.json                       what runs: per cluster the API server's and node's PID, start
                                     time (so a reused PID is never mistaken for ours), URL, port
      kubeconfig                     contexts cluster1 and cluster2 (what `up` prints to export)
      clusters/<c>/                  the dev cluster's data (SQLite store, CA, token key)
      clusters/<c>.kubeconfig        the dev cluster's own kubeconfig
      nodes/<c>/                     the node runtime's folder (pods/, hosts)
      lb-claims/                     LoadBalancer addresses claimed by the two nodes
      logs/<c>-api.log, <c>-node.log (and .out: the ready line)

`up` is idempotent: what still runs is reused, what died is started again (the API server on
its old port, so kubeconfigs and remote secrets stay valid). `down` stops the node runtimes
first (they stop their pods), then the API servers, each SIGTERM then SIGKILL by PID, then sweeps
any pod process a crashed node left behind (pid files under nodes/).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshplane.devcluster import kubeconfig as kubeconfig_mod
from meshplane.kube import kubeconfig as kube_kubeconfig
from meshplane.lab import errors
from meshplane.lab.network import bringup, command, names
from meshplane.lab.network import ledger as ledgers
from meshplane.lab.network import plan as netplan
from meshplane.lab.node import process
from meshplane.runtime import processes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    name: str
    pod_cidr: str
    service_cidr: str
    region: str
    zone: str


def plans(base: int = 0) -> tuple[ClusterPlan, ...]:
    """The lab's address plan. With base 0 (the default): pods 127.0.1.0/24 and 127.0.2.0/24
    (pod-local 127.1.1.0/24, 127.1.2.0/24), Services 127.0.10.0/24 and 127.0.20.0/24,
    LoadBalancers 127.0.3.0/24. Another base (`lab up --address-base N`) moves all of it to
    127.N.*, so two labs can run side by side."""
    if not 0 <= base <= 254:
        raise ValueError(f"address base {base} is out of range (0-254)")
    return (
        ClusterPlan("cluster1", f"127.{base}.1.0/24", f"127.{base}.10.0/24", "region1", "zone1"),
        ClusterPlan("cluster2", f"127.{base}.2.0/24", f"127.{base}.20.0/24", "region1", "zone2"),
    )


def lb_cidr(base: int = 0) -> str:
    return f"127.{base}.3.0/24"


CLUSTER_NAMES = tuple(p.name for p in plans(0))
READY_WITHIN = 60.0
STOP_GRACE = 20.0


@dataclass(frozen=True, slots=True)
class LabPaths:
    dir: Path

    @property
    def state(self) -> Path:
        return self.dir / "lab.json"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def lb_claims(self) -> Path:
        return self.dir / "lb-claims"

    @property
    def network_plan(self) -> Path:
        return self.dir / "network.json"

    def ledgers(self) -> list[Path]:
        """The network ledgers, in clean-up order: the nodes' (pods) before the lab's (bridges)."""
        return [*(self.node(c) / ledgers.FILE for c in CLUSTER_NAMES), self.dir / ledgers.FILE]

    def data(self, cluster: str) -> Path:
        return self.dir / "clusters" / cluster

    def cluster_kubeconfig(self, cluster: str) -> Path:
        return self.dir / "clusters" / f"{cluster}.kubeconfig"

    def node(self, cluster: str) -> Path:
        return self.dir / "nodes" / cluster

    def hosts(self, cluster: str) -> Path:
        return self.node(cluster) / "hosts"

    def log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def out(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.out"


@dataclass(slots=True)
class Proc:
    pid: int
    start: int
    url: str = ""
    port: int = 0

    @property
    def alive(self) -> bool:
        return processes.alive(self.pid, self.start)


NETNS, LOOPBACK = "netns", "loopback"
MODES = ("auto", NETNS, LOOPBACK)


@dataclass(slots=True)
class LabState:
    base: int = 0
    procs: dict[str, dict[str, Proc]] = field(default_factory=dict)
    network: str = ""  # NETNS or LOOPBACK once the lab was created
    network_note: str = ""  # why the lab fell back to loopback mode

    def plans(self) -> tuple[ClusterPlan, ...]:
        return plans(self.base)

    def plan(self, cluster: str) -> ClusterPlan | None:
        return next((p for p in self.plans() if p.name == cluster), None)


def load_state(paths: LabPaths) -> LabState:
    try:
        raw = json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return LabState()
    if not isinstance(raw, dict):
        return LabState()
    base = raw.get("addressBase", 0)
    state = LabState(base if isinstance(base, int) and 0 <= base <= 254 else 0)
    mode = raw.get("network", LOOPBACK if raw.get("clusters") else "")
    state.network = mode if mode in (NETNS, LOOPBACK) else LOOPBACK
    state.network_note = str(raw.get("networkNote", ""))
    clusters = raw.get("clusters")
    for cluster, procs in (clusters if isinstance(clusters, dict) else {}).items():
        for role, p in (procs if isinstance(procs, dict) else {}).items():
            try:
                state.procs.setdefault(cluster, {})[role] = Proc(
                    int(p["pid"]), int(p["start"]), str(p.get("url", "")), int(p.get("port", 0))
                )
            except (KeyError, TypeError, ValueError):
                continue
    return state


def save_state(paths: LabPaths, state: LabState) -> None:
    doc = {
        "addressBase": state.base,
        "network": state.network,
        "networkNote": state.network_note,
        "clusters": {
            c: {r: {"pid": p.pid, "start": p.start, "url": p.url, "port": p.port} for r, p in procs.items()}
            for c, procs in state.procs.items()
        },
    }
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, paths.state)


@contextlib.contextmanager
def locked(paths: LabPaths) -> Iterator[None]:
    """One `up`/`down` at a time per lab folder."""
    paths.dir.mkdir(parents=True, exist_ok=True)
    with open(paths.dir / "lab.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _spawn(paths: LabPaths, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session; stdout (the ready line) to logs/NAME.out, stderr to .log."""
    out, logf = paths.out(name), paths.log(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")
    with open(out, "ab") as o, open(logf, "ab") as e:
        return subprocess.Popen(
            argv, stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd=paths.dir
        )


def _await_ready(paths: LabPaths, started: dict[str, subprocess.Popen[bytes]]) -> dict[str, str]:
    """Each started process's `ready …` line; LaunchError (after killing them all) if one fails."""
    lines: dict[str, str] = {}
    deadline = time.monotonic() + READY_WITHIN
    failed = ""
    while len(lines) < len(started) and not failed and time.monotonic() < deadline:
        for name, proc in started.items():
            if name in lines:
                continue
            line = paths.out(name).read_text(errors="replace").strip()
            if line.startswith("ready"):
                lines[name] = line
            elif proc.poll() is not None:
                failed = name
        if len(lines) < len(started):
            time.sleep(0.05)
    if len(lines) == len(started):
        return lines
    failed = failed or next(n for n in started if n not in lines)
    for proc in started.values():
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    tail = paths.log(failed).read_text(errors="replace").strip().splitlines()[-5:]
    raise errors.LaunchError(
        f"{failed} did not start (log {paths.log(failed)}): " + (" | ".join(tail) or "no output")
    )


def _meshplane(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshplane", *args]


def _api_argv(paths: LabPaths, plan: ClusterPlan, port: int, host: str = "127.0.0.1") -> list[str]:
    return _meshplane(
        "devcluster", "serve", "--name", plan.name, "--host", host, "--port", str(port),
        "--data-dir", str(paths.data(plan.name)),
        "--kubeconfig-out", str(paths.cluster_kubeconfig(plan.name)),
        "--service-cidr", plan.service_cidr,
    )  # fmt: skip


def _node_argv(paths: LabPaths, plan: ClusterPlan, lb: str, network_plan: Path | None) -> list[str]:
    return _meshplane(
        "lab", "node", "--name", plan.name,
        "--kubeconfig", str(paths.cluster_kubeconfig(plan.name)),
        "--dir", str(paths.node(plan.name)),
        "--pod-cidr", plan.pod_cidr, "--lb-cidr", lb, "--lb-claims", str(paths.lb_claims),
        "--region", plan.region, "--zone", plan.zone,
        *(["--network-plan", str(network_plan)] if network_plan else []),
    )  # fmt: skip


def netns_support() -> str:
    """ "" when this process can make the lab's network (CAP_NET_ADMIN, `ip`, `iptables-restore`,
    `setpriv`), else why not."""
    try:
        status = Path("/proc/self/status").read_text()
        eff = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)
    except (OSError, StopIteration, ValueError) as e:
        return f"cannot read this process's capabilities: {e}"
    if not eff & (1 << CAP_NET_ADMIN):
        return "no CAP_NET_ADMIN (run as root to give pods their own network namespaces)"
    missing = [t for t in ("ip", "iptables", "iptables-restore", "setpriv") if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)} (Debian: iproute2, iptables, util-linux)"
    return ""


CAP_NET_ADMIN = 12


def choose_mode(requested: str, base: int | None, support: Callable[[], str]) -> tuple[str, str]:
    """(mode, why not netns) for a new lab: `loopback` as asked or when an address base is given
    with `auto`; `netns` when `support()` finds nothing missing; `auto` falls back to loopback with
    the reason; `netns` asked for but impossible is a LabError naming what is missing."""
    if requested == LOOPBACK or (requested == "auto" and base is not None):
        return LOOPBACK, ""
    why = support()
    if not why:
        return NETNS, ""
    if requested == NETNS:
        raise errors.LabError(f"cannot give pods their own network: {why}")
    return LOOPBACK, why


def _network_plan(
    paths: LabPaths, state: LabState, overrides: dict[str, dict[str, str]]
) -> netplan.NetworkPlan:
    """The lab's plan: the saved one (a lab keeps its ranges), else a new one."""
    if paths.network_plan.exists():
        if overrides:
            raise errors.LabError(
                f"the lab in {paths.dir} already has its ranges; `lab down` and remove it first"
            )
        return netplan.load(paths.network_plan)
    plan = netplan.make(names.new_lab_id(), CLUSTER_NAMES, overrides)
    netplan.save(paths.network_plan, plan)
    return plan


async def _network_up(paths: LabPaths, plan: netplan.NetworkPlan) -> None:
    """Make the lab's bridges and chains unless they exist (a crashed lab's leftovers are removed
    first, by its ledgers)."""
    if await command.succeeds("ip", "link", "show", "dev", plan.clusters[0].bridge):
        return
    await bringup.down(paths.ledgers())
    await bringup.up(ledgers.Ledger(paths.dir), plan)


def cluster_plans(state: LabState, plan: netplan.NetworkPlan | None) -> tuple[ClusterPlan, ...]:
    """The clusters' plans: in netns mode with the network plan's pod and Service ranges."""
    if plan is None:
        return state.plans()
    out = []
    for p in state.plans():
        r = plan.cluster(p.name).ranges
        out.append(ClusterPlan(p.name, str(r.pods.net), str(r.services.net), p.region, p.zone))
    return tuple(out)


def up(
    directory: Path,
    base: int | None = None,
    network: str = "auto",
    ranges: dict[str, dict[str, str]] | None = None,
) -> LabState:
    """Start (or reuse) both dev clusters and their node runtimes; write DIR/kubeconfig. Blocking.

    `network`: `netns` (pods in their own network namespaces, on the lab's bridges), `loopback`
    (pods share the host's loopback), or `auto`: netns when this process can make namespaces,
    else loopback, with the reason kept in the state (`lab status` shows it); `auto` with an
    address `base` (which only loopback mode has) is loopback. A lab keeps the mode,
    ranges and address base it was created with. In netns mode each API server listens on its
    cluster's node address (the bridge's gateway), so pods and the host both reach it.
    The API servers start first (together, each on its previous port), then the node runtimes."""
    paths = LabPaths(directory.resolve())
    env = dict(os.environ)
    if network not in MODES:
        raise errors.LabError(f"--network {network!r}: choose one of {', '.join(MODES)}")
    with locked(paths):
        state = load_state(paths)
        if base is not None and base != state.base:
            if any(p.alive for procs in state.procs.values() for p in procs.values()):
                raise errors.LabError(
                    f"the lab in {paths.dir} runs with address base {state.base}; `lab down` first"
                )
            if state.procs:
                raise errors.LabError(f"the lab in {paths.dir} was created with address base {state.base}")
            plans(base)
            state.base = base
        if state.network and network not in ("auto", state.network):
            raise errors.LabError(
                f"the lab in {paths.dir} was created in {state.network} mode; remove it first"
            )
        if not state.network:
            state.network, state.network_note = choose_mode(network, base, netns_support)
        net: netplan.NetworkPlan | None = None
        if state.network == NETNS:
            if base:
                raise errors.LabError("--address-base is for loopback mode; in netns mode use --range")
            net = _network_plan(paths, state, ranges or {})
            asyncio.run(_network_up(paths, net))
        elif ranges:
            raise errors.LabError("--range is for netns mode (loopback mode uses --address-base)")
        for role in ("api", "node"):
            started: dict[str, subprocess.Popen[bytes]] = {}
            for plan in cluster_plans(state, net):
                old = state.procs.get(plan.name, {}).get(role)
                if old is not None and old.alive:
                    continue
                if role == "api":
                    host = net.cluster(plan.name).gateway if net else "127.0.0.1"
                    argv = _api_argv(paths, plan, old.port if old else 0, host)
                else:
                    lb = str(net.cluster(plan.name).ranges.load_balancers.net) if net else lb_cidr(state.base)
                    argv = _node_argv(paths, plan, lb, paths.network_plan if net else None)
                started[f"{plan.name}-{role}"] = _spawn(paths, f"{plan.name}-{role}", argv, env)
            for name, line in _await_ready(paths, started).items():
                proc = started[name]
                rec = Proc(proc.pid, processes.start_time(proc.pid) or 0)
                if role == "api":
                    rec.url = line.split()[1]
                    rec.port = int(rec.url.rsplit(":", 1)[1])
                state.procs.setdefault(name.rsplit("-", 1)[0], {})[role] = rec
                log.info("started %s pid=%d", name, proc.pid)
            save_state(paths, state)
        save_state(paths, state)
        write_kubeconfig(paths)
        return state


def write_kubeconfig(paths: LabPaths) -> None:
    docs = [yaml.safe_load(paths.cluster_kubeconfig(name).read_text()) for name in CLUSTER_NAMES]
    merged = kube_kubeconfig.merge(docs, current=CLUSTER_NAMES[0])
    paths.kubeconfig.touch(mode=0o600, exist_ok=True)
    paths.kubeconfig.chmod(0o600)
    tmp = paths.kubeconfig.with_suffix(".tmp")
    tmp.touch(mode=0o600, exist_ok=True)
    tmp.write_text(kubeconfig_mod.dump(merged))
    os.replace(tmp, paths.kubeconfig)


def down(directory: Path) -> list[str]:
    """Stop everything `up` started; return what was stopped. Blocking."""
    paths = LabPaths(directory.resolve())
    stopped: list[str] = []
    with locked(paths):
        state = load_state(paths)
        for role in ("node", "api"):
            for cluster, procs in state.procs.items():
                p = procs.get(role)
                if p is not None and p.alive:
                    processes.stop_pid(p.pid, p.start, STOP_GRACE)
                    stopped.append(f"{cluster} {role} (pid {p.pid})")
        for name in CLUSTER_NAMES:
            for pid in process.sweep(paths.node(name) / "pods"):
                stopped.append(f"{name} leftover pod process (pid {pid})")
        removed = asyncio.run(bringup.down(paths.ledgers()))
        if removed:
            stopped.append(f"network: removed {len(removed)} namespaces, links, files and rules")
    return stopped


def status(directory: Path) -> LabState:
    return load_state(LabPaths(directory.resolve()))


def summary_rows(state: LabState) -> list[tuple[str, str, str, str]]:
    rows = []
    for cluster in sorted(state.procs):
        for role, p in sorted(state.procs[cluster].items()):
            rows.append(
                (
                    cluster,
                    role,
                    str(p.pid),
                    ("running" if p.alive else "stopped") + (f" {p.url}" if p.url else ""),
                )
            )
    return rows


def pod_rows(pods: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str, str]]:
    """NAMESPACE, NAME, READY, STATUS, RESTARTS, IP as kubectl shows them."""
    rows = []
    for p in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"].get("name", ""))):
        st = p.get("status") or {}
        cs = st.get("containerStatuses") or []
        ready = sum(1 for c in cs if c.get("ready"))
        total = len((p.get("spec") or {}).get("containers") or [])
        reason = str(st.get("phase") or "Unknown")
        for c in cs:
            waiting = (c.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") and waiting["reason"] != "ContainerCreating":
                reason = str(waiting["reason"])
        if p["metadata"].get("deletionTimestamp"):
            reason = "Terminating"
        restarts = sum(int(c.get("restartCount") or 0) for c in cs)
        rows.append(
            (
                str(p["metadata"].get("namespace")),
                str(p["metadata"].get("name")),
                f"{ready}/{total}",
                reason,
                str(restarts),
                str(st.get("podIP") or ""),
            )
        )
    return rows
