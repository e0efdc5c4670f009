"""Generation cost: 1,000 services x 10 endpoints (two clusters), N sidecars, through the cache.

What the numbers mean: "cold" builds and serializes every resource once (the first proxy of a
push); "per extra proxy" is what each further sidecar of the same push costs (shared resources,
only its own inbound side built); "next push" repeats a full push after an endpoint-only change,
where unchanged resources are reused from the previous version by comparing their inputs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from types import MappingProxyType

from meshplane.model import endpoint, mesh, service
from meshplane.model import proxy as proxy_model
from meshplane.model.ids import ClusterId, Hostname, ProxyId, service_hostname
from meshplane.push import context
from meshplane.xds import generator, resources

SERVICES = 1000
ENDPOINTS = 10
PROXIES = 1000
CLUSTERS = (ClusterId("cluster1"), ClusterId("cluster2"))


def _world(version: str, changed: int = -1) -> context.PushContext:
    services: dict[Hostname, service.Service] = {}
    shards: dict[Hostname, MappingProxyType[ClusterId, tuple[endpoint.Endpoint, ...]]] = {}
    for i in range(SERVICES):
        ns = f"ns-{i % 10}"
        host = service_hostname(f"svc-{i}", ns)
        services[host] = service.Service(
            host,
            f"svc-{i}",
            ns,
            (service.ServicePort("http", 8080, service.Protocol.HTTP),),
            cluster_vips=MappingProxyType(
                {c: (f"10.{96 + k}.{i >> 8}.{i & 255}",) for k, c in enumerate(CLUSTERS)}
            ),
        )
        per: dict[ClusterId, list[endpoint.Endpoint]] = {c: [] for c in CLUSTERS}
        for j in range(ENDPOINTS):
            cluster = CLUSTERS[j % len(CLUSTERS)]
            health = endpoint.Health.DRAINING if i == changed and j == 0 else endpoint.Health.HEALTHY
            per[cluster].append(
                endpoint.Endpoint(
                    address=f"10.{1 + j % 2}.{i >> 6}.{(i & 63) * 4 + j // 2}",
                    ports=MappingProxyType({"http": 8080}),
                    cluster_id=cluster,
                    namespace=ns,
                    service_account=f"svc-{i}",
                    workload_name=f"svc-{i}-{j}",
                    labels=MappingProxyType({"app": f"svc-{i}", "version": "v1"}),
                    tls_mode="istio",
                    health=health,
                )
            )
        shards[host] = MappingProxyType({c: tuple(v) for c, v in per.items()})
    return context.PushContext(
        version, mesh.MeshConfig(), MappingProxyType(services), MappingProxyType(shards)
    )


def _proxy(i: int) -> proxy_model.Proxy:
    ns = f"ns-{i % 10}"
    # sidecars of the first services' endpoints, so each has an inbound side of its own
    ip = f"10.1.{(i % SERVICES) >> 6}.{((i % SERVICES) & 63) * 4}"
    return proxy_model.Proxy(
        ProxyId(f"p{i}.{ns}"),
        proxy_model.ProxyType.SIDECAR,
        (ip,),
        f"p{i}",
        ns,
        f"{ns}.svc.cluster.local",
        CLUSTERS[i % 2],
        metadata=MappingProxyType({"MESHPLANE_LOCALHOST": "127.0.0.1"}),
    )


def _push(
    g: generator.Generator, ctx: context.PushContext, proxies: list[proxy_model.Proxy]
) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    for p in proxies:
        eds_names = None
        for t in resources.PUSH_ORDER:
            out = g.generate(t, p, ctx, eds_names if t == resources.TYPE_EDS else None)
            total += len(out.resources)
    return time.perf_counter() - start, total


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


RUNS = 3  # the machine is shared; medians of a few fresh runs


def measure() -> str:
    proxies = [_proxy(i) for i in range(PROXIES)]
    ctx1 = _world("v1")
    colds, rests, growth = [], [], []
    for _ in range(RUNS):
        g = generator.Generator()
        rss_before = _rss_mib()
        cold, n_first = _push(g, ctx1, proxies[:1])
        rest, n_rest = _push(g, ctx1, proxies[1:])
        growth.append(_rss_mib() - rss_before)
        colds.append(cold)
        rests.append(rest)
    cold, rest = statistics.median(colds), statistics.median(rests)
    sizes = {
        resources.SHORT_NAMES[t]: sum(
            len(r.body.value) for r in g.generate(t, proxies[0], ctx1, None).resources
        )
        for t in resources.PUSH_ORDER
    }
    built_v1 = g.cache.stats.built
    ctx2 = _world("v2", changed=7)
    start = time.perf_counter()
    eds_only = g.generate(
        resources.TYPE_EDS, proxies[0], ctx2, frozenset({"outbound|8080||svc-7.ns-7.svc.cluster.local"})
    )
    eds_only_s = time.perf_counter() - start
    assert len(eds_only.resources) == 1
    next_push, _ = _push(g, ctx2, proxies)
    rebuilt = g.cache.stats.built - built_v1
    lines = [
        f"Generation through `xds.generator.Generator` ({SERVICES} services x {ENDPOINTS} endpoints "
        f"over 2 clusters, {PROXIES} distinct sidecars, CDS+EDS+LDS+RDS each; medians of {RUNS} runs):",
        "",
        "| measure | value |",
        "|---|---|",
        f"| cold, first proxy (build + serialize {n_first} resources) | {cold * 1000:.0f} ms |",
        f"| per extra proxy, same push ({n_rest // max(len(proxies) - 1, 1)} resources each) | "
        f"{rest / max(len(proxies) - 1, 1) * 1e6:.0f} µs |",
        f"| full push to all {PROXIES} proxies, first version | {(cold + rest):.2f} s |",
        f"| EDS-only: one changed cluster load assignment, next version | {eds_only_s * 1000:.2f} ms |",
        f"| full push to all {PROXIES} proxies after that change (unchanged reused) | {next_push:.2f} s |",
        f"| resources rebuilt in that next version | {rebuilt} |",
        f"| process RSS growth for the cache of that push (all proxies) | {growth[0]:.0f} MiB (first run) |",
        "| serialized bytes per sidecar | "
        + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sizes.items())
        + " |",
    ]
    return "\n".join(lines) + "\n"


async def run() -> str:
    return await asyncio.to_thread(measure)


if __name__ == "__main__":
    print(measure())
