"""Two real dev clusters on the module's loop (tests/support/loopcluster.py) for the security tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.loopcluster import Cluster, start_cluster


# This folder's `clusters` (shadowing tests/support/clusterfixtures.py's threaded pair): the tests
# reach into the dev clusters' internals (signing keys, token issuers), so the clusters run on the
# tests' own (module-scoped) loop instead of a thread of their own.
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clusters(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Cluster, Cluster]]:
    base = tmp_path_factory.mktemp("clusters")
    c1 = await start_cluster("cluster1", base / "cluster1")
    try:
        c2 = await start_cluster("cluster2", base / "cluster2")
    except BaseException:
        await c1.admin.close()
        await c1.dev.stop()
        raise
    try:
        for c in (c1, c2):
            await c.namespace("istio-system")
            for sa in ("sleep", "helloworld"):
                await c.service_account("sample", sa)
        yield c1, c2
    finally:
        for c in (c1, c2):
            await c.admin.close()
            await c.dev.stop()
