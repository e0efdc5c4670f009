"""Load generator: N simulated ADS clients, each its own gRPC connection and stream with a sidecar
node id, State of the World or Delta, that subscribe to CDS/EDS/LDS/RDS, ACK everything at once
and record when each (type, version) arrived and was ACKed.

Used in-process (`Fleet`) or as a subprocess driven by JSON lines on stdin (`python -m
bench.xds_load --target HOST:PORT --clients N [--delta]`), so that the clients do not share a CPU
core with the server being measured. Commands: `{"cmd": "wait", "version": V, "types": [...]}`
answers `{"acked": [per-client time], "bytes": N}` once every client has ACKed V for those types
(times are `time.monotonic()`, comparable across processes on one machine); `{"cmd": "stats"}`,
`{"cmd": "quit"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

TYPE_CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TYPE_EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
TYPE_LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
TYPE_RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
ALL_TYPES = (TYPE_CDS, TYPE_EDS, TYPE_LDS, TYPE_RDS)
SHORT = {TYPE_CDS: "cds", TYPE_EDS: "eds", TYPE_LDS: "lds", TYPE_RDS: "rds"}

_SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
_DELTA = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
# one TCP connection per client, as separate Envoys would have
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", -1),
    ("grpc.use_local_subchannel_pool", 1),
)


def node(index: int, namespace: str = "bench", cluster: str = "cluster1") -> base_pb2.Node:
    ip = f"10.{200 + index // 65536}.{(index // 256) % 256}.{index % 256}"
    meta = struct_pb2.Struct()
    meta.update({"CLUSTER_ID": cluster, "NAMESPACE": namespace, "ISTIO_VERSION": "bench"})
    return base_pb2.Node(
        id=f"sidecar~{ip}~load-{index}.{namespace}~{namespace}.svc.cluster.local", metadata=meta
    )


def _raw(b: bytes) -> bytes:
    return b


class LoadClient:
    """One simulated proxy. Requests are pre-serialized: an ACK is the type's subscription bytes
    plus a few bytes of version/nonce (protobuf concatenation merges them)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        index: int,
        delta: bool,
        eds_names: Sequence[str],
        rds_names: Sequence[str],
    ) -> None:
        self.index = index
        self.delta = delta
        self._channel = channel
        names = {TYPE_CDS: (), TYPE_EDS: tuple(eds_names), TYPE_LDS: (), TYPE_RDS: tuple(rds_names)}
        if delta:
            self._subscribe = {
                t: discovery_pb2.DeltaDiscoveryRequest(
                    type_url=t, resource_names_subscribe=n
                ).SerializeToString()
                for t, n in names.items()
            }
            self._ack = {
                t: discovery_pb2.DeltaDiscoveryRequest(type_url=t).SerializeToString() for t in names
            }
        else:
            self._subscribe = {
                t: discovery_pb2.DiscoveryRequest(type_url=t, resource_names=n).SerializeToString()
                for t, n in names.items()
            }
            self._ack = self._subscribe
        first = discovery_pb2.DeltaDiscoveryRequest if delta else discovery_pb2.DiscoveryRequest
        self._node = first(node=node(index)).SerializeToString()
        self.acked: dict[tuple[str, str], float] = {}
        self.ack_times: dict[str, list[float]] = {}  # every ACK per type, in order
        self.bytes = 0
        self.error: str | None = None
        self._call: Any = None
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    async def start(self) -> None:
        response = discovery_pb2.DeltaDiscoveryResponse if self.delta else discovery_pb2.DiscoveryResponse
        method = self._channel.stream_stream(
            _DELTA if self.delta else _SOTW,
            request_serializer=_raw,
            response_deserializer=response.FromString,
        )
        self._call = method()
        first = True
        for t in ALL_TYPES:
            # node only on the first message (set_node_on_first_message_only), as Envoy sends it
            await self._call.write((self._node if first else b"") + self._subscribe[t])
            first = False
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                msg = await self._call.read()
                if msg is grpc.aio.EOF:
                    self.error = "stream ended"
                    return
                t = msg.type_url
                version = msg.system_version_info if self.delta else msg.version_info
                self.bytes += msg.ByteSize()
                ack = (
                    discovery_pb2.DiscoveryRequest if not self.delta else discovery_pb2.DeltaDiscoveryRequest
                )
                if self.delta:
                    tail = ack(response_nonce=msg.nonce).SerializeToString()
                else:
                    tail = ack(response_nonce=msg.nonce, version_info=version).SerializeToString()
                await self._call.write(self._ack[t] + tail)
                now = time.monotonic()
                self.acked.setdefault((t, version), now)
                self.ack_times.setdefault(t, []).append(now)
                self.changed.set()
        except grpc.aio.AioRpcError as e:
            self.error = f"{e.code().name}: {e.details()}"
        except asyncio.CancelledError:
            raise
        finally:
            self.changed.set()

    def first_since(self, type_url: str, since: float) -> float | None:
        """When this client first ACKed a response of `type_url` received after `since` (monotonic)."""
        times = self.ack_times.get(type_url, [])
        i = bisect.bisect_left(times, since)
        return times[i] if i < len(times) else None

    def has(self, version: str, types: Sequence[str]) -> bool:
        return all((t, version) in self.acked for t in types)

    async def stop(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


class Fleet:
    def __init__(
        self, target: str, count: int, delta: bool, eds_names: Sequence[str], rds_names: Sequence[str]
    ) -> None:
        self.target = target
        self.channels = [grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) for _ in range(count)]
        self.clients = [LoadClient(ch, i, delta, eds_names, rds_names) for i, ch in enumerate(self.channels)]

    async def start(self) -> None:
        for i in range(0, len(self.clients), 50):  # connect in waves, as a rollout would
            await asyncio.gather(*(c.start() for c in self.clients[i : i + 50]))

    async def wait(self, version: str, types: Sequence[str], within: float = 600.0) -> list[float]:
        """Per-client time the last of `types` at `version` was ACKed."""
        deadline = time.monotonic() + within
        for c in self.clients:
            while not c.has(version, types):
                if c.error:
                    raise RuntimeError(f"client {c.index}: {c.error}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"client {c.index} has no {version} for {types}")
                c.changed.clear()
                try:
                    await asyncio.wait_for(c.changed.wait(), 1.0)
                except TimeoutError:
                    pass
        return [max(c.acked[(t, version)] for t in types) for c in self.clients]

    async def wait_since(self, type_url: str, since: float, within: float = 600.0) -> list[float]:
        """Per-client time of the first ACK of a `type_url` response that arrived after `since`
        (for servers whose push versions the caller does not know, e.g. a real discovery)."""
        deadline = time.monotonic() + within
        out = []
        for c in self.clients:
            while (t := c.first_since(type_url, since)) is None:
                if c.error:
                    raise RuntimeError(f"client {c.index}: {c.error}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"client {c.index} got no {type_url} after {since}")
                c.changed.clear()
                try:
                    await asyncio.wait_for(c.changed.wait(), 1.0)
                except TimeoutError:
                    pass
            out.append(t)
        return out

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.clients))
        await asyncio.gather(*(ch.close() for ch in self.channels))


async def _serve_commands(fleet: Fleet) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = await reader.readline()
        if not line:
            return
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            return
        if cmd["cmd"] == "wait":
            try:
                times = await fleet.wait(cmd["version"], cmd["types"], cmd.get("within", 600.0))
                reply: dict[str, Any] = {"acked": times, "bytes": sum(c.bytes for c in fleet.clients)}
            except (RuntimeError, TimeoutError) as e:
                reply = {"error": str(e)}
        elif cmd["cmd"] == "wait_since":
            try:
                times = await fleet.wait_since(cmd["type"], cmd["since"], cmd.get("within", 600.0))
                reply = {"acked": times}
            except (RuntimeError, TimeoutError) as e:
                reply = {"error": str(e)}
        elif cmd["cmd"] == "stats":
            reply = {
                "bytes": sum(c.bytes for c in fleet.clients),
                "errors": [c.error for c in fleet.clients if c.error],
            }
        else:
            reply = {"error": f"unknown command {cmd['cmd']!r}"}
        print(json.dumps(reply), flush=True)


async def _main(args: argparse.Namespace, eds: list[str]) -> None:
    fleet = Fleet(args.target, args.clients, args.delta, eds, args.rds or [])
    await fleet.start()
    try:
        await _serve_commands(fleet)
    finally:
        await fleet.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--target", required=True)
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--delta", action="store_true")
    p.add_argument("--eds-names", help="JSON file with the EDS cluster names to subscribe")
    p.add_argument("--rds", action="append", help="route configuration name to subscribe (repeatable)")
    args = p.parse_args(argv)
    eds = json.loads(Path(args.eds_names).read_text()) if args.eds_names else []
    asyncio.run(_main(args, eds))


if __name__ == "__main__":
    main()
