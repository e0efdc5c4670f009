"""The agent tests' certificate authority: D's certificate service on a real TLS gRPC server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import casrv


@pytest.fixture
async def ca_server() -> AsyncIterator[casrv.CaServer]:
    server = casrv.new_ca_server()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
