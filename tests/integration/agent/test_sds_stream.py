"""The SDS server's state-of-the-world protocol, driven by a gRPC client on its unix socket."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.rpc import status_pb2

from meshplane.agent import csr, sds, uds, workloadcert
from meshplane.security import ca

ID = "spiffe://cluster.local/ns/sample/sa/sleep"


@pytest.fixture(scope="module")
def mesh_ca() -> ca.MeshCA:
    return ca.MeshCA(ca.self_signed_root())


def _cert(mesh_ca: ca.MeshCA) -> workloadcert.WorkloadCert:
    pair = csr.generate(ID, csr.KeyAlgorithm.ECDSA)
    chain = mesh_ca.sign_workload(x509.load_pem_x509_csr(pair.csr_pem), [ID], dt.timedelta(hours=1))
    return workloadcert.from_chain(pair.key_pem, chain, ID, time.time())


class Stream:
    """A StreamSecrets call whose responses are read into a queue by a background task
    (cancelling a grpc.aio read cancels the whole call, so reads never time out themselves)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.requests: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self.responses: asyncio.Queue[discovery_pb2.DiscoveryResponse] = asyncio.Queue()
        self.call = sds_pb2_grpc.SecretDiscoveryServiceStub(channel).StreamSecrets(self._iter())
        self._reader = asyncio.create_task(self._read())

    async def _iter(self) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while (req := await self.requests.get()) is not None:
            yield req

    async def _read(self) -> None:
        async for resp in self.call:
            await self.responses.put(resp)

    async def send(self, names: list[str], nonce: str = "", version: str = "", error: str = "") -> None:
        req = discovery_pb2.DiscoveryRequest(
            resource_names=names, response_nonce=nonce, version_info=version, type_url=sds.TYPE_URL
        )
        if error:
            req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.requests.put(req)

    async def recv(self, within: float = 5.0) -> discovery_pb2.DiscoveryResponse:
        return await asyncio.wait_for(self.responses.get(), within)

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.responses.get(), seconds)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        await self.requests.put(None)
        self.call.cancel()
        self._reader.cancel()


def _names(resp: discovery_pb2.DiscoveryResponse) -> dict[str, secret_pb2.Secret]:
    out = {}
    for r in resp.resources:
        s = secret_pb2.Secret()
        r.Unpack(s)
        out[s.name] = s
    return out


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[workloadcert.Store, grpc.aio.Channel, sds.SdsServer]]:
    store = workloadcert.Store()
    address = uds.address(tmp_path / "sds.sock")
    server = sds.SdsServer(store, address)
    await server.start()
    channel = grpc.aio.insecure_channel(address.grpc_target)
    try:
        yield store, channel, server
    finally:
        await channel.close()
        await server.stop()


async def test_waits_for_first_cert_then_pushes_rotations_not_acks(
    served: tuple[workloadcert.Store, grpc.aio.Channel, sds.SdsServer], mesh_ca: ca.MeshCA
) -> None:
    store, channel, _ = served
    s = Stream(channel)
    await s.send(["default", "ROOTCA"])
    assert await s.nothing_within(0.3)  # no certificate yet: the request waits
    first = _cert(mesh_ca)
    store.publish(first)
    resp = await s.recv()
    got = _names(resp)
    assert set(got) == {"default", "ROOTCA"}
    assert got["default"].tls_certificate.certificate_chain.inline_bytes == first.chain_pem
    assert got["ROOTCA"].validation_context.trusted_ca.inline_bytes == first.root_pem
    # ACK: nothing more is sent
    await s.send(["default", "ROOTCA"], nonce=resp.nonce, version=resp.version_info)
    assert await s.nothing_within(0.3)
    # rotation: a new version with the new key is pushed without being asked
    second = _cert(mesh_ca)
    store.publish(second)
    pushed = await s.recv()
    assert pushed.version_info != resp.version_info and pushed.nonce != resp.nonce
    assert _names(pushed)["default"].tls_certificate.private_key.inline_bytes == second.key_pem
    await s.close()


async def test_subscription_change_and_nack(
    served: tuple[workloadcert.Store, grpc.aio.Channel, sds.SdsServer],
    mesh_ca: ca.MeshCA,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, channel, server = served
    store.publish(_cert(mesh_ca))
    s = Stream(channel)
    await s.send(["ROOTCA"])
    resp = await s.recv()
    assert set(_names(resp)) == {"ROOTCA"}
    # asking for another set of names is answered, even with the last nonce
    await s.send(["ROOTCA", "default", "file-cert:/x~/y"], nonce=resp.nonce, version=resp.version_info)
    resp2 = await s.recv()
    assert set(_names(resp2)) == {"ROOTCA", "default"}
    # a NACK is logged, the stream stays up and later rotations still arrive
    await s.send(
        ["ROOTCA", "default", "file-cert:/x~/y"],
        nonce=resp2.nonce,
        version=resp.version_info,
        error="bad key",
    )
    store.publish(_cert(mesh_ca))
    resp3 = await s.recv()
    assert set(_names(resp3)) == {"ROOTCA", "default"}
    assert "envoy rejected secrets" in caplog.text and "bad key" in caplog.text
    assert "unknown secrets" in caplog.text
    key = store.current.key_pem.decode()  # type: ignore[union-attr]
    assert key not in caplog.text
    assert server.pushes == 3
    await s.close()


async def test_garbage_on_the_socket_does_not_stop_the_server(
    served: tuple[workloadcert.Store, grpc.aio.Channel, sds.SdsServer], mesh_ca: ca.MeshCA
) -> None:
    store, channel, _ = served
    raw = channel.stream_stream("/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets")

    async def garbage() -> AsyncIterator[bytes]:
        yield b"\xff\x00not a protobuf"

    call = raw(garbage())
    answers = [r async for r in call]
    assert answers == []  # nothing is served for it, and the call ends instead of hanging
    store.publish(_cert(mesh_ca))
    s = Stream(channel)
    await s.send(["default"])
    assert set(_names(await s.recv())) == {"default"}
    await s.close()
