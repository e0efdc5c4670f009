"""Config propagation: from a change seen by a cluster's watch to the ACK of the last proxy it reached.

Two figures come out of here, both ending at an ACK (the proxy accepted the response that carried
the change), not at the send:

- `meshplane_config_propagation_seconds{cluster,type}`: per change origin. Starts when the
  informer of `cluster` delivered the event (the control plane's watch saw it), ends when the
  *last* proxy that was sent a `type` response (cds, eds, lds, rds) carrying it ACKed that type.
  `meshplane_config_propagation_from_write_seconds{cluster,type}` has the same end but starts at
  the object's newest `metadata.managedFields[].time` (the API server's record of the write), where
  the object carries one. It is a second metric rather than a label so that sums and rates of the
  first are never doubled; Kubernetes writes that time with one-second precision (RFC 3339 without
  fractions, k8s.io/apimachinery/pkg/apis/meta/v1 ManagedFieldsEntry.Time), so the figure is
  rounded up by up to a second. Servers that do not keep managedFields (meshplane's dev cluster)
  record only the first metric.
- `pilot_proxy_convergence_time`: per proxy, from the first change the proxy had not seen yet
  (`PushRequest.start`) to its ACK of every type the push sent it.

A change that no connected proxy was sent anything for (nobody subscribes to what it touched)
records nothing. A NACK ends the wait for that proxy and type without a figure for that type (the
change did not propagate there); a proxy that disconnects stops being waited for.

Flow (server.ads calls these): `fanout` when a push is offered to the connections; `take` when a
connection takes its pending push; `sent` once it has written what that push meant for it
(perhaps nothing); `acked` / `nacked` as its requests arrive; `gone` when it disconnects.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshplane.push import metrics as metrics_mod
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import rfc3339

# How many recent samples per cluster feed the p50/p99 shown by /debug/propagationz
RECENT = 256


@dataclass(eq=False, slots=True)
class Origin:
    """One change as the watch of `cluster` delivered it (identity matters: one per event)."""

    cluster: str
    observed: float  # clock.monotonic() when the informer delivered the event
    written: float | None = None  # wall time of the object's newest managedFields entry


def written_at(obj: Any) -> float | None:
    """The newest `metadata.managedFields[].time` of a Kubernetes object (lightkube model or dict)."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else getattr(obj, "metadata", None)
    if meta is None:
        return None
    entries = meta.get("managedFields") if isinstance(meta, Mapping) else getattr(meta, "managedFields", None)
    newest: float | None = None
    for e in entries or ():
        t = e.get("time") if isinstance(e, Mapping) else getattr(e, "time", None)
        if isinstance(t, str):
            try:
                t = rfc3339.parse(t)
            except ValueError:
                continue
        if isinstance(t, dt.datetime):
            if t.tzinfo is None:
                t = t.replace(tzinfo=dt.UTC)
            value = t.timestamp()
        elif isinstance(t, float | int):
            value = float(t)
        else:
            continue
        newest = value if newest is None else max(newest, value)
    return newest


def earliest_per_cluster(origins: Iterable[Origin]) -> list[Origin]:
    """The first change of each cluster: what a debounced push is measured from."""
    first: dict[str, Origin] = {}
    for o in origins:
        cur = first.get(o.cluster)
        if cur is None or o.observed < cur.observed:
            first[o.cluster] = o
    return list(first.values())


@dataclass(eq=False, slots=True)
class Flight:
    """One origin on its way: connections still to process it, and per type who must still ACK."""

    origin: Origin
    pending: set[str]
    waiting: dict[str, set[str]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)


@dataclass(eq=False, slots=True)
class _Converge:
    start: float
    types: set[str]


class Tracker:
    def __init__(self, metrics: metrics_mod.Metrics, clock: clock_mod.Clock | None = None) -> None:
        self._metrics = metrics
        self._clock = clock or clock_mod.SystemClock()
        self._flights: dict[int, Flight] = {}  # id(origin) -> flight
        # connection id -> short type -> flights / convergences waiting for its next ACK of that type
        self._by_conn: dict[str, dict[str, list[Flight]]] = {}
        self._converge: dict[str, list[_Converge]] = {}
        self._offered: dict[str, list[Flight]] = {}  # connection id -> flights not yet taken
        self._recent: dict[str, collections.deque[tuple[float, str, float]]] = {}

    # --- fan-out and send ------------------------------------------------------------------------
    def fanout(self, origins: Iterable[Origin], connections: Iterable[str]) -> None:
        """A push carrying `origins` was offered to `connections` (earliest origin per cluster kept)."""
        conns = set(connections)
        if not conns:
            return
        for o in earliest_per_cluster(origins):
            f = Flight(o, set(conns))
            self._flights[id(o)] = f
            for c in conns:
                self._offered.setdefault(c, []).append(f)

    def take(self, conn: str) -> list[Flight]:
        """`conn` took its pending push: every change offered to it so far is in that push (a
        connection's pending push merges all offers, push/pending.py)."""
        return self._offered.pop(conn, [])

    def sent(self, conn: str, flights: list[Flight], types: Iterable[str], start: float = 0.0) -> None:
        """`conn` wrote responses of `types` for the push it took (no types: nothing to send)."""
        sent = set(types)
        if sent and start:
            self._converge.setdefault(conn, []).append(_Converge(start, set(sent)))
        waits = self._by_conn.setdefault(conn, {}) if sent else {}
        for f in flights:
            if conn not in f.pending:
                continue
            f.pending.discard(conn)
            for t in sent:
                f.waiting.setdefault(t, set()).add(conn)
                waits.setdefault(t, []).append(f)
            self._check(f)

    # --- answers from the proxy ------------------------------------------------------------------
    def acked(self, conn: str, short_type: str) -> None:
        """`conn` ACKed the last response of `short_type` it was sent (so every earlier one too)."""
        self._answer(conn, short_type, ok=True)
        convs = self._converge.get(conn)
        if convs:
            now = self._clock.monotonic()
            keep = []
            for c in convs:
                c.types.discard(short_type)
                if c.types:
                    keep.append(c)
                else:
                    self._metrics.convergence.observe(max(0.0, now - c.start))
            self._converge[conn] = keep

    def nacked(self, conn: str, short_type: str) -> None:
        self._answer(conn, short_type, ok=False)
        convs = self._converge.get(conn)
        if convs:
            self._converge[conn] = [c for c in convs if short_type not in c.types]

    def gone(self, conn: str) -> None:
        """The connection closed: stop waiting for it."""
        self._converge.pop(conn, None)
        waits = self._by_conn.pop(conn, {})
        touched = {id(f): f for fs in waits.values() for f in fs}
        for f in self._offered.pop(conn, []):
            f.pending.discard(conn)
            touched[id(f)] = f
        for f in touched.values():
            for who in f.waiting.values():
                who.discard(conn)
            self._check(f)

    def _answer(self, conn: str, short_type: str, ok: bool) -> None:
        waits = self._by_conn.get(conn)
        if not waits:
            return
        for f in waits.pop(short_type, ()):
            f.waiting.get(short_type, set()).discard(conn)
            if not ok:
                f.failed.add(short_type)
            self._check(f)

    def _check(self, f: Flight) -> None:
        if f.pending:
            return
        now: float | None = None
        for t, who in f.waiting.items():
            if who or t in f.done:
                continue
            f.done.add(t)
            if t in f.failed:
                continue
            if now is None:
                now = self._clock.monotonic()
            self._record(f.origin, t, max(0.0, now - f.origin.observed))
        if all(t in f.done for t in f.waiting):
            self._flights.pop(id(f.origin), None)

    def _record(self, o: Origin, short_type: str, seconds: float) -> None:
        self._metrics.propagation.labels(cluster=o.cluster, type=short_type).observe(seconds)
        if o.written is not None:
            from_write = max(0.0, self._clock.wall() - o.written)
            self._metrics.propagation_from_write.labels(cluster=o.cluster, type=short_type).observe(
                from_write
            )
        recent = self._recent.setdefault(o.cluster, collections.deque(maxlen=RECENT))
        recent.append((self._clock.wall(), short_type, seconds))

    # --- reading ---------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Changes still waiting for some proxy (tests, debug)."""
        return len(self._flights)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per cluster: the recent samples' count, p50 and p99 in seconds, and the newest sample time."""
        out: dict[str, dict[str, Any]] = {}
        for cluster, samples in sorted(self._recent.items()):
            values = sorted(s for _, _, s in samples)
            out[cluster] = {
                "samples": len(values),
                "p50": quantile(values, 0.5),
                "p99": quantile(values, 0.99),
                "last": rfc3339.format(samples[-1][0]) if samples else "",
            }
        return out


def quantile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank quantile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]
