"""An asyncio xDS test client (grpc.aio) that speaks State of the World and Delta ADS.

It subscribes and unsubscribes, ACKs every response by default, NACKs on demand (`nack_next`),
can send raw requests (stale nonces, bad nodes), and waits for conditions on what it has
received. It tracks resources as Envoy would: CDS/LDS responses replace the whole set (SotW),
EDS/RDS responses add to it, and Delta applies `resources` and `removed_resources`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2, struct_pb2
from google.rpc import status_pb2

from meshplane.xds import resources

STATE_OF_THE_WORLD_TYPES = resources.WILDCARD_TYPES
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1))


def sidecar_node_id(pod: str, namespace: str, ip: str, kind: str = "sidecar") -> str:
    return f"{kind}~{ip}~{pod}.{namespace}~{namespace}.svc.cluster.local"


def make_node(node_id: str, metadata: Mapping[str, Any] | None = None) -> base_pb2.Node:
    node = base_pb2.Node(id=node_id, cluster="test")
    if metadata:
        s = struct_pb2.Struct()
        s.update(dict(metadata))
        node.metadata.CopyFrom(s)
    return node


@dataclass
class Received:
    type_url: str
    nonce: str
    version: str
    names: list[str]
    removed: list[str]
    at: float


@dataclass
class TypeView:
    resources: dict[str, any_pb2.Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # Delta per-resource versions
    version_info: str = ""  # last accepted version (SotW) / system_version_info (Delta)
    last_nonce: str = ""
    names: set[str] = field(default_factory=set)  # current subscription
    wildcard: bool = False
    acked: list[str] = field(default_factory=list)
    nacked: list[str] = field(default_factory=list)
    first_seen: dict[str, float] = field(default_factory=dict)  # "name@version" -> monotonic


class XdsClient:
    def __init__(
        self,
        target: str,
        node: base_pb2.Node,
        *,
        delta: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        auto_ack: bool = True,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.target = target
        self.node = node
        self.delta = delta
        self.auto_ack = auto_ack
        self._credentials = credentials
        self._call_metadata = metadata
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._node_sent = False
        self._nack: dict[str, str] = {}
        self._subscribed: set[str] = set()
        self.views: dict[str, TypeView] = {}
        self.received: list[Received] = []
        self.error: grpc.aio.AioRpcError | None = None
        self.done = False

    # --- lifecycle ------------------------------------------------------------------------
    async def connect(self) -> XdsClient:
        if self._credentials is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        else:
            self._channel = grpc.aio.secure_channel(self.target, self._credentials, options=CHANNEL_OPTIONS)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        md = self._call_metadata or None
        if self.delta:
            self._call = stub.DeltaAggregatedResources(metadata=md)
        else:
            self._call = stub.StreamAggregatedResources(metadata=md)
        self._reader = asyncio.create_task(self._read_loop())
        return self

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        if self._channel is not None:
            await self._channel.close()

    async def __aenter__(self) -> XdsClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- requests -------------------------------------------------------------------------
    def view(self, type_url: str) -> TypeView:
        return self.views.setdefault(type_url, TypeView())

    async def send(self, req: discovery_pb2.DiscoveryRequest | discovery_pb2.DeltaDiscoveryRequest) -> None:
        """Send a raw request (the node is added to the first one unless it already has one)."""
        if not self._node_sent and not req.HasField("node"):
            req.node.CopyFrom(self.node)
        self._node_sent = True
        await self._call.write(req)

    async def subscribe(self, type_url: str, names: Iterable[str] = ()) -> None:
        v = self.view(type_url)
        new = set(names)
        first = type_url not in self._subscribed
        self._subscribed.add(type_url)
        if not new and first and type_url in STATE_OF_THE_WORLD_TYPES:
            v.wildcard = True
        v.names |= new
        if self.delta:
            await self.send(
                discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, resource_names_subscribe=sorted(new))
            )
        else:
            await self.send(
                discovery_pb2.DiscoveryRequest(
                    type_url=type_url,
                    resource_names=sorted(v.names),
                    version_info=v.version_info,
                    response_nonce=v.last_nonce,
                )
            )

    async def unsubscribe(self, type_url: str, names: Iterable[str]) -> None:
        v = self.view(type_url)
        gone = set(names)
        v.names -= gone
        if self.delta:
            await self.send(
                discovery_pb2.DeltaDiscoveryRequest(
                    type_url=type_url, resource_names_unsubscribe=sorted(gone)
                )
            )
            for n in gone:
                v.resources.pop(n, None)
                v.versions.pop(n, None)
        else:
            await self.send(
                discovery_pb2.DiscoveryRequest(
                    type_url=type_url,
                    resource_names=sorted(v.names),
                    version_info=v.version_info,
                    response_nonce=v.last_nonce,
                )
            )

    def nack_next(self, type_url: str, message: str = "rejected by test") -> None:
        """NACK the next response of this type instead of ACKing it."""
        self._nack[type_url] = message

    # --- responses ------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            while True:
                msg = await self._call.read()
                if msg is grpc.aio.EOF:
                    break
                await self._on_response(msg)
        except grpc.aio.AioRpcError as e:
            self.error = e
        finally:
            self.done = True
            async with self._changed:
                self._changed.notify_all()

    async def _on_response(self, msg: Any) -> None:
        now = time.monotonic()
        type_url = msg.type_url
        v = self.view(type_url)
        v.last_nonce = msg.nonce
        nack = self._nack.pop(type_url, None)
        if self.delta:
            names = [r.name for r in msg.resources]
            rec = Received(
                type_url, msg.nonce, msg.system_version_info, names, list(msg.removed_resources), now
            )
            if nack is None:
                for r in msg.resources:
                    v.resources[r.name] = r.resource
                    v.versions[r.name] = r.version
                    v.first_seen.setdefault(f"{r.name}@{r.version}", now)
                for n in msg.removed_resources:
                    v.resources.pop(n, None)
                    v.versions.pop(n, None)
                v.version_info = msg.system_version_info
        else:
            decoded = {_name(type_url, a): a for a in msg.resources}
            rec = Received(type_url, msg.nonce, msg.version_info, list(decoded), [], now)
            if nack is None:
                if type_url in STATE_OF_THE_WORLD_TYPES:
                    v.resources = decoded
                else:
                    v.resources.update(decoded)
                for name in decoded:
                    v.first_seen.setdefault(f"{name}@{msg.version_info}", now)
                v.version_info = msg.version_info
        self.received.append(rec)
        if nack is not None:
            v.nacked.append(msg.nonce)
            await self._reply(type_url, msg.nonce, error=nack)
        elif self.auto_ack:
            v.acked.append(msg.nonce)
            await self._reply(type_url, msg.nonce)
        async with self._changed:
            self._changed.notify_all()

    async def ack(self, type_url: str) -> None:
        """ACK the last response of a type by hand (when auto_ack is off)."""
        v = self.view(type_url)
        v.acked.append(v.last_nonce)
        await self._reply(type_url, v.last_nonce)

    async def _reply(self, type_url: str, nonce: str, error: str | None = None) -> None:
        v = self.view(type_url)
        detail = (
            status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=error)
            if error
            else None
        )
        if self.delta:
            req = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, response_nonce=nonce)
        else:
            req = discovery_pb2.DiscoveryRequest(
                type_url=type_url,
                response_nonce=nonce,
                version_info=v.version_info,
                resource_names=sorted(v.names),
            )
        if detail is not None:
            req.error_detail.CopyFrom(detail)
        try:
            await self.send(req)
        except (grpc.aio.UsageError, asyncio.InvalidStateError):
            pass

    # --- waiting --------------------------------------------------------------------------
    async def wait(self, cond: Callable[[XdsClient], bool], within: float = 10.0, what: str = "") -> None:
        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: cond(self) or self.done)
            if not cond(self):
                raise AssertionError(f"stream ended ({self.error!r}) before: {what or cond!r}")

        try:
            await asyncio.wait_for(_wait(), within)
        except TimeoutError:
            raise AssertionError(f"timed out after {within}s waiting for {what or cond!r}") from None

    async def wait_resource(
        self,
        type_url: str,
        name: str,
        predicate: Callable[[any_pb2.Any], bool] | None = None,
        within: float = 10.0,
    ) -> any_pb2.Any:
        def ok(c: XdsClient) -> bool:
            r = c.view(type_url).resources.get(name)
            return r is not None and (predicate is None or predicate(r))

        await self.wait(ok, within, f"{type_url} {name}")
        return self.view(type_url).resources[name]

    async def wait_responses(self, type_url: str, count: int, within: float = 10.0) -> list[Received]:
        await self.wait(lambda c: len(c.of_type(type_url)) >= count, within, f"{count} x {type_url}")
        return self.of_type(type_url)

    def of_type(self, type_url: str) -> list[Received]:
        return [r for r in self.received if r.type_url == type_url]

    async def wait_closed(self, within: float = 10.0) -> grpc.aio.AioRpcError | None:
        await self.wait(lambda c: c.done, within, "stream closed")
        return self.error


def _name(type_url: str, a: any_pb2.Any) -> str:
    """A SotW resource's name, read from the decoded message."""
    if type_url == resources.TYPE_CDS:
        c = cluster_pb2.Cluster()
        a.Unpack(c)
        return c.name
    if type_url == resources.TYPE_EDS:
        e = endpoint_pb2.ClusterLoadAssignment()
        a.Unpack(e)
        return e.cluster_name
    if type_url == resources.TYPE_LDS:
        lst = listener_pb2.Listener()
        a.Unpack(lst)
        return lst.name
    if type_url == resources.TYPE_RDS:
        r = route_pb2.RouteConfiguration()
        a.Unpack(r)
        return r.name
    return a.type_url
