"""The console's traffic figures: each connected proxy's Envoy counters, scraped through its agent.

Every `interval` seconds, while someone has looked at the console in the last `idle` seconds, the
collector GETs `http://PROXY_IP:15021/stats/upstreams?used=1` (agent/stats.py: Envoy's per-host
`rq_total` / `rq_error` and the cluster's `upstream_rq_time` buckets, hosts that served at least one
request) from every proxy connected to this control plane, `concurrency` at a time. Rates are the
change between the newest sample and the oldest one inside `window` seconds (Prometheus' `rate()`
over a one-minute range, without extrapolation); the p99 comes from the change of the cumulative
latency buckets over the same samples. With one sample there is no rate yet (`None`): nothing is
guessed. A proxy that cannot be scraped keeps no samples and its error is reported.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from meshplane.agent import stats as agent_stats
from meshplane.runtime import clock as clock_mod
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

# the agent's status port (agent/app.py STATUS_PORT: `--statusPort`, 15021 unless the pod says otherwise)
STATUS_PORT = 15021


@dataclass(frozen=True, slots=True)
class HostTraffic:
    """One upstream host of one Envoy cluster, as one source proxy sees it."""

    envoy_cluster: str
    address: str
    port: int
    requests: int  # rq_total so far (Envoy's counter)
    rps: float | None  # requests per second over the window; None until two samples
    eps: float | None  # errors (5xx, connection failures) per second over the window
    p99_ms: float | None  # of the Envoy cluster (all its hosts), over the window
    mtls: bool  # the Envoy cluster did TLS handshakes (Istio's mTLS to the sidecar)


@dataclass
class Traffic:
    at: float = 0.0  # wall time of the newest scrape
    window: float = 60.0
    by_proxy: Mapping[str, list[HostTraffic]] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)

    def for_proxy(self, proxy_id: str) -> list[HostTraffic]:
        return self.by_proxy.get(proxy_id, [])


Sample = tuple[float, list[Mapping[str, Any]]]  # (monotonic time, /stats/upstreams page)
Target = tuple[str, str]  # (proxy id, address)


def quantile_ms(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """The upper bound of the first bucket holding quantile `q` of cumulative `(le, count)` buckets."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    for le, count in buckets:
        if count >= q * total:
            return le
    return buckets[-1][0]


def _bucket_delta(
    new: Sequence[Sequence[float]], old: Sequence[Sequence[float]]
) -> list[tuple[float, float]]:
    before = {float(le): float(c) for le, c in old}
    return [(float(le), float(c) - before.get(float(le), 0.0)) for le, c in new]


def rates(samples: Sequence[Sample], window: float) -> list[HostTraffic]:
    """Per-host traffic from one proxy's samples (oldest first)."""
    if not samples:
        return []
    t_new, newest = samples[-1]
    base = next(((t, page) for t, page in samples[:-1] if t >= t_new - window), None)
    old_hosts: dict[tuple[str, str, int], Mapping[str, Any]] = {}
    old_clusters: dict[str, Mapping[str, Any]] = {}
    if base is not None:
        for c in base[1]:
            old_clusters[c["name"]] = c
            for h in c.get("hosts", []):
                old_hosts[(c["name"], h["address"], h["port"])] = h
    out = []
    for c in newest:
        name = c["name"]
        p99: float | None = None
        if base is not None and name in old_clusters:
            p99 = quantile_ms(
                _bucket_delta(c.get("rq_time_ms", []), old_clusters[name].get("rq_time_ms", [])), 0.99
            )
        for h in c.get("hosts", []):
            rps = eps = None
            if base is not None:
                dt = t_new - base[0]
                old = old_hosts.get((name, h["address"], h["port"]), {"rq_total": 0, "rq_error": 0})
                d_total, d_err = h["rq_total"] - old["rq_total"], h["rq_error"] - old["rq_error"]
                if dt > 0 and d_total >= 0 and d_err >= 0:  # a counter that went down: Envoy restarted
                    rps, eps = d_total / dt, d_err / dt
            out.append(
                HostTraffic(
                    envoy_cluster=name,
                    address=h["address"],
                    port=h["port"],
                    requests=h["rq_total"],
                    rps=rps,
                    eps=eps,
                    p99_ms=p99 if rps else None,
                    mtls=c.get("ssl_handshake", 0) > 0,
                )
            )
    return out


class Collector:
    def __init__(
        self,
        targets: Callable[[], Sequence[Target]],
        *,
        port: int = STATUS_PORT,
        interval: float = 5.0,
        window: float = 60.0,
        idle: float = 60.0,
        concurrency: int = 32,
        timeout: float = 2.0,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self._targets = targets
        self.port = port
        self.interval = interval
        self.window = window
        self.idle = idle
        self._concurrency = concurrency
        self._timeout = timeout
        self._clock = clock or clock_mod.SystemClock()
        self._samples: dict[str, collections.deque[Sample]] = {}
        self._errors: dict[str, str] = {}
        self._at = 0.0
        self._watched_at: float | None = None
        self._wake = asyncio.Event()
        self.scrapes = 0

    def touch(self) -> None:
        """Someone is looking: scrape (now, if idle until now) and keep scraping for `idle` seconds."""
        now = self._clock.monotonic()
        if self._watched_at is None or now - self._watched_at > self.idle:
            self._wake.set()
        self._watched_at = now

    @property
    def watched(self) -> bool:
        return self._watched_at is not None and self._clock.monotonic() - self._watched_at <= self.idle

    async def run(self) -> None:
        while True:
            if self.watched:
                try:
                    await self.scrape_once()
                except Exception:  # one bad round must not stop the collector
                    log.exception("console: scrape failed")
                await self._clock.sleep(self.interval)
            else:
                self._wake.clear()
                await self._wake.wait()

    def url(self, address: str, path: str = agent_stats.UPSTREAMS_PATH) -> str:
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{self.port}{path}"

    async def scrape_once(self) -> None:
        targets = [t for t in self._targets() if t[1]]
        sem = asyncio.Semaphore(self._concurrency)
        timeout = aiohttp.ClientTimeout(total=self._timeout)

        async def one(session: aiohttp.ClientSession, proxy_id: str, address: str) -> None:
            async with sem:
                try:
                    async with session.get(self.url(address), params={"used": "1"}) as r:
                        text = await r.text()
                        if r.status != 200:
                            raise ValueError(f"HTTP {r.status}: {text[:200].strip()}")
                    page = json.loads(text)
                    if not isinstance(page, list):
                        raise ValueError("not a JSON list")
                except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as e:
                    self._errors[proxy_id] = f"{self.url(address)}: {e or type(e).__name__}"
                    return
                self._errors.pop(proxy_id, None)
                now = self._clock.monotonic()
                q = self._samples.setdefault(proxy_id, collections.deque())
                q.append((now, page))
                while q and q[0][0] < now - self.window - self.interval:
                    q.popleft()

        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(one(session, pid, addr) for pid, addr in targets))
        live = {pid for pid, _ in targets}
        for gone in [p for p in self._samples if p not in live]:
            del self._samples[gone]
        for gone in [p for p in self._errors if p not in live]:
            del self._errors[gone]
        self._at = self._clock.wall()
        self.scrapes += 1
        log.debug("console: scraped %s", kv(proxies=len(targets), errors=len(self._errors)))

    def traffic(self) -> Traffic:
        return Traffic(
            at=self._at,
            window=self.window,
            by_proxy={pid: rates(list(q), self.window) for pid, q in self._samples.items()},
            errors=dict(self._errors),
        )

    async def proxy_config(self, address: str) -> dict[str, Any]:
        """The names Envoy holds, from the agent's /stats/config (the proxy page)."""
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout)) as session,
            session.get(self.url(address, agent_stats.CONFIG_PATH)) as r,
        ):
            data = await r.json(content_type=None)
            if r.status != 200:
                raise ValueError(f"HTTP {r.status}: {data}")
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return data
