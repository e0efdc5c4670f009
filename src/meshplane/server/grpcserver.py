"""The gRPC server that carries ADS (and, added by the composition root, the CA service).

Istio serves the same services on 15010 (plaintext) and 15012 (TLS with istiod's certificate,
client certificates verified if given). One `grpc.aio.Server` here listens on any number of
addresses, each plaintext or with the `grpc.ServerCredentials` the security helper builds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from meshplane.runtime import logging as rlog
from meshplane.server import ads, errors

log = logging.getLogger(__name__)

# Large pushes (1,000 services) exceed gRPC's 4 MiB default, so sending is unlimited; Envoy's
# requests are small.
_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    # Istio's keepalive: ping idle clients so dead proxies are noticed and their streams closed.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_concurrent_streams", 100_000),
)


@dataclass(frozen=True, slots=True)
class Listener:
    address: str  # "127.0.0.1:15010"; port 0 picks a free port
    credentials: grpc.ServerCredentials | None = None  # None: plaintext (15010); TLS for 15012


# Adds a service to the server, e.g. `lambda s: ca_pb2_grpc.add_..._to_server(servicer, s)`.
ServiceRegistrar = Callable[[grpc.aio.Server], None]


class GrpcServer:
    def __init__(
        self,
        ads_server: ads.AdsServer,
        listeners: Sequence[Listener],
        extra_services: Sequence[ServiceRegistrar] = (),
    ) -> None:
        if not listeners:
            raise ValueError("the xDS server needs at least one listener")
        self._ads = ads_server
        self._listeners = tuple(listeners)
        self._extra = list(extra_services)
        self._server: grpc.aio.Server | None = None
        self.ports: list[int] = []

    def add_service(self, registrar: ServiceRegistrar) -> None:
        """Register another gRPC service (the CA) on the same ports; call before `start()`."""
        if self._server is not None:
            raise RuntimeError("add_service() must be called before start()")
        self._extra.append(registrar)

    async def start(self) -> list[int]:
        """Bind every listener and start serving; returns the bound ports in listener order."""
        server = grpc.aio.server(options=_OPTIONS)
        server.add_generic_rpc_handlers((self._ads.rpc_handler(),))
        for registrar in self._extra:
            registrar(server)
        ports = []
        for lst in self._listeners:
            try:
                if lst.credentials is None:
                    port = server.add_insecure_port(lst.address)
                else:
                    port = server.add_secure_port(lst.address, lst.credentials)
            except RuntimeError as e:
                raise errors.ServerError(f"cannot listen on {lst.address}: {e}") from e
            if port == 0:
                raise errors.ServerError(f"cannot listen on {lst.address}")
            ports.append(port)
        await server.start()
        self._server = server
        self.ports = ports
        for lst, port in zip(self._listeners, ports, strict=True):
            log.info(
                "xDS server listening %s",
                rlog.kv(address=lst.address, port=port, tls=lst.credentials is not None),
            )
        return ports

    async def stop(self, grace: float = 1.0) -> None:
        """Stop accepting streams, end the open ones cleanly, then stop the server."""
        if self._server is not None:
            await self._ads.shutdown(grace)
            await self._server.stop(grace)
            self._server = None
        await self._ads.close()
