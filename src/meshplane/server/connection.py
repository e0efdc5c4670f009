"""One ADS stream: the proxy behind it, its per-type state, its inbox of requests and pending push.

A single task per connection handles both requests and pushes (as Istio's `Stream` loop does),
so the state is never touched concurrently; the reader task only appends to the inbox.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from typing import Any, Protocol, TypeAlias

from envoy.service.discovery.v3 import discovery_pb2

from meshplane.model import proxy as proxy_mod
from meshplane.push import pending
from meshplane.server import watch
from meshplane.xds import resources

Request: TypeAlias = discovery_pb2.DiscoveryRequest | discovery_pb2.DeltaDiscoveryRequest

SHORT = {
    resources.TYPE_CDS: "cds",
    resources.TYPE_EDS: "eds",
    resources.TYPE_LDS: "lds",
    resources.TYPE_RDS: "rds",
    resources.TYPE_NDS: "nds",
}
# Istio's syncz field prefixes per type
_SYNCZ = {"cds": "cluster", "lds": "listener", "rds": "route", "eds": "endpoint"}

_ids = itertools.count(1)


def short_type(type_url: str) -> str:
    return SHORT.get(type_url) or type_url.rsplit(".", 1)[-1].lower()


class Stream(Protocol):
    async def write(self, data: bytes) -> None: ...


class Connection:
    def __init__(
        self,
        proxy: proxy_mod.Proxy,
        delta: bool,
        peer: str,
        stream: Stream,
        connected_at: float,
        proxy_version: str = "",
    ) -> None:
        self.id = f"{proxy.id}-{next(_ids)}"
        self.proxy = proxy
        self.delta = delta
        self.peer = peer
        self.stream = stream
        self.connected_at = connected_at
        self.states: dict[str, watch.TypeState] = {}
        self.inbox: collections.deque[Request] = collections.deque()
        self.pending = pending.PendingPush()
        self.wake = asyncio.Event()
        self.closed: BaseException | None = None  # why the reader stopped
        self.reader_done = False
        self.last_push_version = ""
        self.proxy_version = proxy_version  # Envoy's build version from the node
        # what its inbound clusters/listeners were last built from (see respond.plan_push)
        self.inbound_signature: tuple[object, ...] | None = None

    @property
    def istio_version(self) -> str:
        value = self.proxy.metadata.get("ISTIO_VERSION", "")
        return value if isinstance(value, str) else ""

    def deliver(self, request: Request) -> None:
        self.inbox.append(request)
        self.wake.set()

    def reader_stopped(self, error: BaseException | None) -> None:
        self.reader_done = True
        self.closed = error
        self.wake.set()

    def syncz(self) -> dict[str, Any]:
        """This stream as one `/debug/syncz` entry: Istio's flat fields plus per-type detail."""
        entry: dict[str, Any] = {
            "cluster_id": self.proxy.cluster_id,
            "proxy": self.proxy.id,
            "proxy_type": self.proxy.type.value,
            "proxy_version": self.proxy_version,
            "istio_version": self.istio_version,
            "connection_id": self.id,
            "address": self.peer,
            "delta": self.delta,
        }
        detail: dict[str, Any] = {}
        for type_url, st in self.states.items():
            short = short_type(type_url)
            if short in _SYNCZ:
                entry[f"{_SYNCZ[short]}_sent"] = st.nonce_sent
                entry[f"{_SYNCZ[short]}_acked"] = st.nonce_acked
            nack = st.last_nack
            detail[short] = {
                "type_url": type_url,
                "sent_version": st.version_sent,
                "sent_nonce": st.nonce_sent,
                "acked_version": st.version_acked,
                "acked_nonce": st.nonce_acked,
                "wildcard": st.wildcard,
                "subscribed": len(st.names),
                "resources": len(st.known) if self.delta else st.count,
                "last_nack": None
                if nack is None
                else {
                    "nonce": nack.nonce,
                    "version": nack.version,
                    "message": nack.message,
                    "code": nack.code,
                    "time": nack.at,
                },
            }
        entry["xds"] = detail
        return entry
