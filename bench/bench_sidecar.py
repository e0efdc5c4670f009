"""Per-proxy config size with and without a Sidecar (issue 13): 1,000 services in 10 namespaces,
one sidecar proxy; the Sidecar `egress.hosts: ["./*"]` imports its own namespace's 100 services
(10%). Bytes are the serialized resources the generator returns for CDS, EDS, LDS and RDS (what
the ADS server sends in full on a proxy's first connection); time is the first (cold) generation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from bench.__main__ import machine
from bench.bench_generate import SERVICES, _proxy, _world
from meshplane.networking import config as networking_config
from meshplane.xds import generator, resources

TYPES = (resources.TYPE_CDS, resources.TYPE_EDS, resources.TYPE_LDS, resources.TYPE_RDS)
SIDECAR = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Sidecar",
    "metadata": {"name": "default", "namespace": "ns-0"},
    "spec": {"egress": [{"hosts": ["./*"]}]},
}


def _sizes(with_sidecar: bool) -> tuple[dict[str, tuple[int, int]], float]:
    ctx = _world("v1")
    if with_sidecar:
        cfg, problems = networking_config.build([SIDECAR])
        assert not problems
        ctx = dataclasses.replace(ctx, networking=cfg)
    g = generator.Generator()
    proxy = _proxy(0)  # in ns-0
    start = time.perf_counter()
    out = {t: g.generate(t, proxy, ctx, None) for t in TYPES}
    elapsed = time.perf_counter() - start
    return {
        resources.SHORT_NAMES[t]: (len(o.resources), sum(len(r.body.value) for r in o.resources))
        for t, o in out.items()
    }, elapsed


def measure() -> str:
    rows = []
    totals = {}
    for label, scoped in (
        ("no Sidecar (all 1,000 services)", False),
        ('Sidecar `hosts: ["./*"]` (100)', True),
    ):
        sizes, elapsed = _sizes(scoped)
        total = sum(b for _, b in sizes.values())
        totals[scoped] = total
        cells = " | ".join(f"{n} / {b / 1024:.0f} KiB" for n, b in sizes.values())
        rows.append(f"| {label} | {cells} | {total / 1024:.0f} KiB | {elapsed * 1000:.0f} ms |")
    names = " | ".join(f"{resources.SHORT_NAMES[t]} (resources / bytes)" for t in TYPES)
    return (
        "\n".join(
            [
                "## Sidecar egress scoping (issue 13, bench/bench_sidecar.py)",
                "",
                f"One sidecar proxy, {SERVICES} HTTP services x 10 endpoints in 10 namespaces "
                "(bench_generate's world), CDS+EDS+LDS+RDS as generated on its first connection "
                "(cold cache):",
                "",
                f"| proxy | {names} | total | generation |",
                "|---|" + "---|" * (len(TYPES) + 2),
                *rows,
                "",
                "Scoped to 10% of the services, the proxy's config is "
                f"{totals[True] / totals[False]:.0%} of the "
                f"unscoped size. Run: `.venv/bin/python -m bench sidecar` on {machine()}.",
            ]
        )
        + "\n"
    )


async def run() -> str:
    return await asyncio.to_thread(measure)


if __name__ == "__main__":
    print(measure())
