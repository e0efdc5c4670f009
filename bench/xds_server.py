"""A discovery server for the benchmarks, in its own process: ours (memory source -> push queue ->
ADS) or the baseline that only sends pre-serialized bytes, over the same mesh.

Driven by JSON lines on stdin: `{"cmd": "full"}` makes a global change (trust domain and every
endpoint) and pushes it (the change itself is not timed); `{"cmd": "eds"}` changes one service's
endpoints and enqueues an EDS-only request through the debounce; `{"cmd": "rss"}`, `{"cmd": "lag"}`
(the event loop's worst delay since the last call), `{"cmd": "quit"}`. Times are `time.monotonic()`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from tests.support import memsource

from bench import xds_baseline, xds_load
from meshplane.model import endpoint
from meshplane.model.ids import ClusterId, Hostname
from meshplane.push import context, debounce, metrics, queue
from meshplane.server import ads, grpcserver, node, wire
from meshplane.xds import generator, resources

ROUTES = ("15001",)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Mesh:
    """1,000 services x 10 endpoints over two clusters, changed in place by the commands."""

    def __init__(self, services: int, endpoints: int) -> None:
        self.source = memsource.MemorySource()
        memsource.populate(self.source, services, endpoints, ("cluster1", "cluster2"))
        self.hosts = sorted(self.source.services)
        self.round = 0
        for i, h in enumerate(self.hosts):
            self._endpoints(i, h)

    def eds_names(self) -> list[str]:
        return [f"outbound|80||{h}" for h in self.hosts]

    def global_change(self) -> None:
        self.round += 1
        domain = f"td{self.round}.local"
        self.source.mesh = dataclasses.replace(self.source.mesh, trust_domain=domain)
        for i, h in enumerate(self.hosts):
            self._endpoints(i, h)

    def endpoint_change(self) -> Hostname:
        self.round += 1
        i = self.round % len(self.hosts)
        self._endpoints(i, self.hosts[i])
        return self.hosts[i]

    def _endpoints(self, i: int, host: Hostname) -> None:
        svc = self.source.services[host]
        for c, cluster in enumerate(("cluster1", "cluster2")):
            eps = tuple(
                endpoint.Endpoint(
                    address=f"10.{self.round // 256 % 256}.{self.round % 256}.{c * 50 + j + 1}",
                    ports={"http": 8080},
                    cluster_id=ClusterId(cluster),
                    namespace=svc.namespace,
                    service_account=f"sa-{i}",  # SANs carry the trust domain: a global change alters CDS
                )
                for j in range(5)
            )
            self.source.endpoints.setdefault(host, {})[ClusterId(cluster)] = eps


class LagMeter:
    def __init__(self) -> None:
        self.worst = 0.0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - t - 0.005)

    def take(self) -> float:
        w, self.worst = self.worst, 0.0
        return w


class Ours:
    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.metrics = metrics.Metrics()
        self.ads = ads.AdsServer(
            generator.Generator(), metrics=self.metrics, cluster_id=ClusterId("cluster1")
        )
        self.queue = queue.PushQueue(
            mesh.source, self.ads, metrics=self.metrics, debounce_options=debounce.DebounceOptions(0.1, 10.0)
        )
        self.grpc = grpcserver.GrpcServer(self.ads, [grpcserver.Listener("127.0.0.1:0")])

    async def start(self) -> int:
        (port,) = await self.grpc.start()
        await self.queue.start()
        await self.queue.push_now(context.PushRequest(full=True, reasons=frozenset({"startup"})))
        return port

    @property
    def version(self) -> str:
        current = self.queue.current
        return current.version if current else ""

    def prepare_full(self) -> None:
        self.mesh.global_change()

    async def full(self) -> dict[str, Any]:
        t0 = time.monotonic()
        ctx = await self.queue.push_now(context.PushRequest(full=True, reasons=frozenset({"global"})))
        return {"version": ctx.version, "t0": t0}

    async def eds(self) -> dict[str, Any]:
        host = self.mesh.endpoint_change()
        t0 = time.monotonic()
        count = self.queue.pushes
        self.queue.enqueue(
            context.PushRequest(full=False, eds_hosts=frozenset({host}), reasons=frozenset({"eds"}))
        )
        await self.queue.wait_pushes(count + 1)
        current = self.queue.current
        return {"version": current.version if current else "", "t0": t0}

    async def stop(self) -> None:
        await self.queue.stop()
        await self.grpc.stop(0.5)


class Baseline:
    """Pre-serializes the responses our generator makes for one bench proxy; then only sends bytes."""

    def __init__(self, mesh: Mesh, delta: bool, concurrency: int) -> None:
        self.mesh = mesh
        self.delta = delta
        self.gen = generator.Generator()
        self.proxy = node.parse(xds_load.node(0), ClusterId("cluster1"))
        self.version_number = 0
        self.last: dict[str, str] = {}
        self.server = xds_baseline.BaselineServer(self._responses(all_types=True), concurrency)
        self._next: dict[str, bytes] = {}

    def _responses(self, all_types: bool) -> dict[str, bytes]:
        self.version_number += 1
        v = f"baseline-{self.version_number}"
        ctx = self.mesh.source.snapshot(v)
        enc = wire.Encoder()
        names: dict[str, frozenset[str] | None] = {
            resources.TYPE_CDS: None,
            resources.TYPE_EDS: frozenset(self.mesh.eds_names()),
            resources.TYPE_LDS: None,
            resources.TYPE_RDS: frozenset(ROUTES),
        }
        out = {}
        for t in resources.PUSH_ORDER:
            g = self.gen.generate(t, self.proxy, ctx, names[t])
            if not all_types and self.delta and self.last.get(t) == g.version:
                continue  # Delta sends nothing for an unchanged type
            self.last[t] = g.version
            if self.delta:
                out[t] = wire.delta_response(enc, t, v, f"n{self.version_number}", g.resources, ())
            else:
                out[t] = wire.sotw_response(enc, t, v, f"n{self.version_number}", g.resources)
        return out

    async def start(self) -> int:
        return await self.server.start("127.0.0.1:0")

    @property
    def version(self) -> str:
        return f"baseline-{self.version_number}"

    def prepare_full(self) -> None:
        self.mesh.global_change()
        self._next = self._responses(all_types=False)  # serialized before the clock starts

    async def full(self) -> dict[str, Any]:
        responses = self._next
        t0 = time.monotonic()
        self.server.push(responses)
        return {"version": self.version, "t0": t0, "types": list(responses)}

    async def eds(self) -> dict[str, Any]:
        """One changed cluster's endpoints, pre-serialized, sent to every stream (no debounce)."""
        host = self.mesh.endpoint_change()
        self.version_number += 1
        v = self.version
        ctx = self.mesh.source.snapshot(v)
        name = f"outbound|80||{host}"
        g = self.gen.generate(resources.TYPE_EDS, self.proxy, ctx, frozenset({name}))
        enc = wire.Encoder()
        if self.delta:
            data = wire.delta_response(enc, resources.TYPE_EDS, v, f"n{v}", g.resources, ())
        else:
            data = wire.sotw_response(enc, resources.TYPE_EDS, v, f"n{v}", g.resources)
        t0 = time.monotonic()
        self.server.push({resources.TYPE_EDS: data}, remember=False)
        return {"version": v, "t0": t0}

    async def stop(self) -> None:
        await self.server.stop()


async def _main(args: argparse.Namespace) -> None:
    mesh = Mesh(args.services, args.endpoints)
    server: Ours | Baseline = (
        Ours(mesh) if args.mode == "ours" else Baseline(mesh, args.delta, args.concurrency)
    )
    port = await server.start()
    lag = LagMeter()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    ready = {"port": port, "version": server.version, "eds_names": mesh.eds_names(), "routes": ROUTES}
    print(json.dumps({**ready, "rss": rss_bytes()}), flush=True)
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            cmd = json.loads(line)["cmd"]
            if cmd == "quit":
                return
            if cmd == "full":
                server.prepare_full()  # the registry's work, not the server's: not in the loop delay
                await asyncio.sleep(0.02)  # let the meter finish the tick that spanned it
                lag.take()
                reply = await server.full()
            elif cmd == "eds":
                reply = await server.eds()
            elif cmd == "rss":
                reply = {"rss": rss_bytes()}
            elif cmd == "lag":
                reply = {"lag": lag.take()}
            else:
                reply = {"error": f"unknown command {cmd!r}"}
            print(json.dumps(reply), flush=True)
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mode", choices=("ours", "baseline"), default="ours")
    p.add_argument("--delta", action="store_true", help="baseline: pre-serialize Delta responses")
    p.add_argument("--concurrency", type=int, default=100, help="baseline: streams written at once (0: all)")
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--endpoints", type=int, default=10)
    asyncio.run(_main(p.parse_args(argv)))


if __name__ == "__main__":
    main()
