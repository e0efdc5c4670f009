"""A whole xDS control plane in-process: memory source -> push queue -> ADS server -> gRPC + debug HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from meshplane.model.ids import ClusterId
from meshplane.push import context, debounce, metrics, queue
from meshplane.runtime import clock as clock_mod
from meshplane.server import ads, debug, grpcserver, respond
from meshplane.xds import generator
from meshplane.xds import resources as R
from tests.support import memsource, xdsclient


@dataclass
class Stack:
    source: memsource.MemorySource
    metrics: metrics.Metrics
    ads: ads.AdsServer
    queue: queue.PushQueue
    grpc: grpcserver.GrpcServer
    debug: debug.DebugServer
    host: str = "127.0.0.1"
    port: int = 0
    debug_port: int = 0
    gen: respond.Generator = field(default_factory=generator.Generator)

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def debug_url(self) -> str:
        return f"http://{self.host}:{self.debug_port}"

    async def push(
        self, full: bool = True, eds_hosts: frozenset[str] = frozenset(), reason: str = "test"
    ) -> None:
        """Push now (no debounce) and wait until it has been handed to every connection."""
        from meshplane.model.ids import Hostname

        await self.queue.push_now(
            context.PushRequest(
                full=full, eds_hosts=frozenset(Hostname(h) for h in eds_hosts), reasons=frozenset({reason})
            )
        )

    async def stop(self) -> None:
        await self.queue.stop()
        await self.debug.stop()
        await self.grpc.stop(grace=0.1)


async def start(
    source: memsource.MemorySource | None = None,
    *,
    clock: clock_mod.Clock | None = None,
    debounce_options: debounce.DebounceOptions | None = None,
    push_concurrency: int = 100,
    send_timeout: float = 30.0,
    auth: ads.XdsAuth | None = None,
    initial_push: bool = True,
    gen: respond.Generator | None = None,
    cluster_id: str = "cluster1",
) -> Stack:
    source = source or memsource.MemorySource()
    m = metrics.Metrics()
    g = gen or generator.Generator()
    server = ads.AdsServer(
        g,
        metrics=m,
        cluster_id=ClusterId(cluster_id),
        clock=clock,
        auth=auth,
        push_concurrency=push_concurrency,
        send_timeout=send_timeout,
    )
    q = queue.PushQueue(source, server, metrics=m, clock=clock, debounce_options=debounce_options)
    grpc_server = grpcserver.GrpcServer(server, [grpcserver.Listener("127.0.0.1:0")])
    dbg = debug.DebugServer(server, m)
    stack = Stack(source, m, server, q, grpc_server, dbg, gen=g)
    (stack.port,) = await grpc_server.start()
    stack.debug_port = await dbg.start("127.0.0.1", 0)
    await q.start()
    if initial_push:
        await stack.push(reason="startup")
    return stack


@contextlib.asynccontextmanager
async def running(source: memsource.MemorySource | None = None, **kwargs: Any) -> AsyncIterator[Stack]:
    s = await start(source, **kwargs)
    try:
        yield s
    finally:
        await s.stop()


def sample_source(services: int = 3, endpoints: int = 2) -> memsource.MemorySource:
    src = memsource.MemorySource()
    memsource.populate(src, services, endpoints)
    return src


SAMPLE_C0, SAMPLE_C1 = (f"outbound|80||svc-{i}.ns-{i}.svc.cluster.local" for i in range(2))


async def handshake(c: xdsclient.XdsClient) -> None:
    """Envoy's start-up order against `sample_source()`: CDS, then EDS for two clusters, LDS, RDS,
    each acknowledged before the next. The sidecar is captured (Istio's default layout), so its one
    HTTP port 80 has route configuration "80"."""
    await c.subscribe(R.TYPE_CDS)
    await c.wait(lambda c: SAMPLE_C0 in c.view(R.TYPE_CDS).resources)
    await c.subscribe(R.TYPE_EDS, [SAMPLE_C0, SAMPLE_C1])
    await c.wait(lambda c: {SAMPLE_C0, SAMPLE_C1} <= c.view(R.TYPE_EDS).resources.keys())
    await c.subscribe(R.TYPE_LDS)
    await c.wait(lambda c: bool(c.view(R.TYPE_LDS).resources))
    await c.subscribe(R.TYPE_RDS, ["80"])
    await c.wait(lambda c: "80" in c.view(R.TYPE_RDS).resources)
