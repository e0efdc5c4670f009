"""Decide and build the responses of one stream for a push or a request (runs on the generation thread).

A `Step` says which type to answer and for which names; `build()` calls the generator, picks
what the proxy must receive (State of the World: the whole subscribed set, or only the affected
clusters on an EDS-only push; Delta: only resources whose version differs from what the proxy has,
plus removals) and returns the response bytes with the state changes to commit once they are sent.
Nothing here touches the connection: the caller commits after a successful write.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from meshplane.model import proxy as proxy_mod
from meshplane.model.ids import Hostname
from meshplane.push import context
from meshplane.server import watch, wire
from meshplane.xds import naming, nds, resources


class Generator(Protocol):
    """C2's `xds.generator.Generator`: resources of one type for one proxy, cached per push."""

    def generate(
        self,
        type_url: str,
        proxy: proxy_mod.Proxy,
        ctx: context.PushContext,
        names: frozenset[str] | None,
    ) -> resources.Generated: ...

    def inbound_signature(self, proxy: proxy_mod.Proxy, ctx: context.PushContext) -> tuple[object, ...]:
        """What the proxy's own inbound clusters/listeners depend on (changes when its IP joins
        or leaves a service)."""
        ...


@dataclass(frozen=True, slots=True)
class Step:
    type_url: str
    # names this response speaks for; None means the whole subscription of the type
    scope: frozenset[str] | None = None
    # answer even with nothing to send (the first request of a type must get a response)
    must_respond: bool = False
    # SotW: send only the scope (an EDS-only push); otherwise the whole subscribed set
    incremental: bool = False


@dataclass(slots=True)
class Outgoing:
    type_url: str
    nonce: str
    version: str
    data: bytes
    sent: list[resources.Resource]
    removed: list[str] = field(default_factory=list)
    incremental: bool = False


def nonce() -> str:
    return secrets.token_hex(8)


def _names(st: watch.TypeState, scope: frozenset[str] | None) -> frozenset[str] | None:
    if st.wildcard:
        return scope
    return st.names if scope is None else scope & st.names


@dataclass(slots=True)
class Built:
    outgoing: list[Outgoing]
    # the proxy's inbound signature at this push, when CDS or LDS was (re)built for it
    signature: tuple[object, ...] | None = None


def plan_push(
    gen: Generator,
    proxy: proxy_mod.Proxy,
    ctx: context.PushContext,
    states: dict[str, watch.TypeState],
    request: context.PushRequest,
    last_signature: tuple[object, ...] | None,
) -> list[Step]:
    """Full push: every subscribed type in Envoy's order. EDS-only push: EDS for the affected
    clusters the proxy subscribed to, and never CDS, unless the change moved the proxy's own IP
    into or out of a service, which changes its inbound clusters and listeners (then: full)."""
    # a type already answered from this very snapshot (a request raced the push) needs nothing more
    full = [Step(t) for t in resources.PUSH_ORDER if t in states and states[t].version_sent != ctx.version]
    if request.full:
        return full
    if last_signature is not None and gen.inbound_signature(proxy, ctx) != last_signature:
        return full
    steps: list[Step] = []
    eds = states.get(resources.TYPE_EDS)
    if eds is not None and eds.version_sent != ctx.version:
        affected = affected_clusters(eds.names, request.eds_hosts, ctx)
        if affected:
            steps.append(Step(resources.TYPE_EDS, scope=affected, incremental=True))
    # a headless Service's name resolves to its endpoints: their change is a new name table
    nds_state = states.get(resources.TYPE_NDS)
    if (
        nds_state is not None
        and nds_state.version_sent != ctx.version
        and any(nds.is_headless(ctx.services.get(h)) for h in request.eds_hosts)
    ):
        steps.append(Step(resources.TYPE_NDS))
    return steps


def affected_clusters(
    names: frozenset[str], hosts: frozenset[Hostname], ctx: context.PushContext
) -> frozenset[str]:
    """The subscribed EDS cluster names of these hosts. Built from each service's ports (both of
    Istio's name forms) rather than by parsing every subscribed name of every proxy on each push."""
    if len(names) <= 4 * len(hosts):
        return frozenset(n for n in names if naming.outbound_host(n) in hosts)
    out: set[str] = set()
    for host in hosts:
        svc = ctx.services.get(host)
        if svc is None:  # gone from the snapshot: fall back to reading the names
            out.update(n for n in names if naming.outbound_host(n) == host)
            continue
        for p in svc.ports:
            for n in (naming.outbound_cluster(host, p.port), naming.sni_name(host, p.port)):
                if n in names:
                    out.add(n)
    return frozenset(out)


def build_push(
    gen: Generator,
    enc: wire.Encoder,
    proxy: proxy_mod.Proxy,
    ctx: context.PushContext,
    delta: bool,
    states: dict[str, watch.TypeState],
    request: context.PushRequest,
    last_signature: tuple[object, ...] | None,
) -> Built:
    steps = plan_push(gen, proxy, ctx, states, request, last_signature)
    return build(gen, enc, proxy, ctx, delta, states, steps)


def build(
    gen: Generator,
    enc: wire.Encoder,
    proxy: proxy_mod.Proxy,
    ctx: context.PushContext,
    delta: bool,
    states: dict[str, watch.TypeState],
    steps: Sequence[Step],
) -> Built:
    """The responses for `steps`, in order. Forced EDS follows a Delta CDS response (warming)."""
    enc.begin(ctx.version)
    signature = None
    if any(s.type_url in (resources.TYPE_CDS, resources.TYPE_LDS) for s in steps):
        signature = gen.inbound_signature(proxy, ctx)
    out: list[Outgoing] = []
    forced_eds: frozenset[str] = frozenset()
    pending = list(steps)
    while pending:
        step = pending.pop(0)
        st = states.get(step.type_url)
        if st is None:
            continue
        names = _names(st, step.scope)
        if names is not None and not names and not step.must_respond:
            continue
        # the generator returns exactly the requested names (all of them for None), as one tuple
        # shared by every proxy with the same view, so its bytes are joined once (wire.Encoder.body)
        items = gen.generate(step.type_url, proxy, ctx, names).resources
        if delta:
            forced = forced_eds if step.type_url == resources.TYPE_EDS else frozenset()
            changed, removed = watch.delta_diff(items, st, step.scope, forced)
            send: Sequence[resources.Resource] = items if len(changed) == len(items) else changed
            if not send and not removed and not step.must_respond:
                continue
            n = nonce()
            data = wire.delta_response(enc, step.type_url, ctx.version, n, send, removed)
            out.append(Outgoing(step.type_url, n, ctx.version, data, list(send), removed))
            if step.type_url == resources.TYPE_CDS and resources.TYPE_EDS in states:
                eds = states[resources.TYPE_EDS]
                forced_eds = frozenset(r.name for r in send) & eds.names
                if forced_eds and not any(s.type_url == resources.TYPE_EDS for s in pending):
                    pending.insert(0, Step(resources.TYPE_EDS, scope=forced_eds))
        else:
            incremental = step.incremental and step.scope is not None
            if incremental and not items:
                continue
            n = nonce()
            data = wire.sotw_response(enc, step.type_url, ctx.version, n, items)
            out.append(Outgoing(step.type_url, n, ctx.version, data, list(items), incremental=incremental))
    return Built(out, signature)


def commit(st: watch.TypeState, o: Outgoing, delta: bool, now: float) -> None:
    """Record a response that was written: nonce/version sent and what the proxy now has."""
    st.nonce_sent, st.version_sent, st.sent_at = o.nonce, o.version, now
    if delta:
        watch.commit_delta(st, o.sent, o.removed)
    else:
        watch.commit_sotw(st, o.sent, o.incremental)
