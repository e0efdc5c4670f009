"""The ServiceAccount controllers: default accounts, kube-root-ca.crt, legacy token Secrets."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from meshplane.devcluster.auth import tokens
from meshplane.devcluster.controllers import objects, serviceaccounts
from meshplane.devcluster.schema import defaults, resources
from meshplane.devcluster.storage import persistence, store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import tasks
from tests.support import wait

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = tokens.generate_key()


@pytest.fixture
async def env() -> AsyncIterator[tuple[store.Store, serviceaccounts.ServiceAccountControllers]]:
    st = store.Store(persistence.MemoryPersistence(), clock_mod.SystemClock())
    await st.open()
    await st.create("namespaces", {"metadata": {"name": "ns"}})
    api = objects.ObjectApi(st, clock_mod.SystemClock(), defaults.ServiceIPs("10.96.0.0/16"))
    ctl = serviceaccounts.ServiceAccountControllers(api, resources.Registry.with_builtins(), KEY, CA, "unit")
    await ctl.resync()
    task = tasks.guarded(ctl.run(), "sa-controllers")
    try:
        yield st, ctl
    finally:
        await tasks.cancel(task)


def token_secret(name: str, sa: str, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "annotations": {serviceaccounts.SA_NAME_ANNOTATION: sa},
        },
        "type": serviceaccounts.TOKEN_TYPE,
        **extra,
    }


async def test_resync_creates_default_account_and_root_ca(env: Any) -> None:
    st, _ = env
    assert st.peek("serviceaccounts", "ns", "default") is not None
    cm = st.peek("configmaps", "ns", "kube-root-ca.crt")
    assert cm is not None and cm["data"] == {"ca.crt": CA.decode()}
    # a new namespace gets both from the event; a tampered ConfigMap is put back
    await st.create("namespaces", {"metadata": {"name": "later"}})
    await wait.wait_for(lambda: st.peek("configmaps", "later", "kube-root-ca.crt"), what="root ca in new ns")
    await wait.wait_for(lambda: st.peek("serviceaccounts", "later", "default"), what="default sa in new ns")
    changed = st.get("configmaps", "ns", "kube-root-ca.crt")
    assert changed is not None
    changed["data"] = {"ca.crt": "tampered"}
    await st.update("configmaps", changed)
    await wait.wait_for(
        lambda: (
            (st.peek("configmaps", "ns", "kube-root-ca.crt") or {}).get("data") == {"ca.crt": CA.decode()}
        ),
        what="root ca restored",
    )


async def test_token_secret_lifecycle(env: Any) -> None:
    st, _ = env
    sa = await st.create("serviceaccounts", {"metadata": {"name": "reader", "namespace": "ns"}})
    await st.create("secrets", token_secret("reader-token", "reader"))
    filled = await wait.wait_for(
        lambda: ((st.peek("secrets", "ns", "reader-token") or {}).get("data") or {}).get("token"),
        what="token",
    )
    secret = st.peek("secrets", "ns", "reader-token")
    assert secret is not None
    assert secret["data"]["ca.crt"] == base64.b64encode(CA).decode()
    assert secret["data"]["namespace"] == base64.b64encode(b"ns").decode()
    assert secret["metadata"]["annotations"][serviceaccounts.SA_UID_ANNOTATION] == sa["metadata"]["uid"]
    verifier = tokens.Verifier(KEY, st)
    assert await verifier.authenticate(base64.b64decode(filled).decode(), 0.0) is not None
    # a Secret for an account that does not exist is deleted, as Kubernetes does
    await st.create("secrets", token_secret("orphan-token", "nobody"))
    await wait.wait_for(lambda: st.peek("secrets", "ns", "orphan-token") is None, what="orphan deleted")
    # deleting the account deletes its token Secrets
    await st.delete("serviceaccounts", "ns", "reader")
    await wait.wait_for(lambda: st.peek("secrets", "ns", "reader-token") is None, what="token secret deleted")


async def test_malformed_objects_do_not_stop_the_controllers(env: Any) -> None:
    st, _ = env
    await st.create("serviceaccounts", {"metadata": {"name": "x", "namespace": "ns"}})
    for i, junk in enumerate(
        [
            {
                "metadata": {"name": "j0", "namespace": "ns", "annotations": ["not", "a", "map"]},
                "type": serviceaccounts.TOKEN_TYPE,
            },
            {
                "metadata": {"name": "j1", "namespace": "ns"},
                "type": serviceaccounts.TOKEN_TYPE,
                "data": "nope",
            },
            token_secret("j2", "x", data=["x"]),
        ]
    ):
        await st.create("secrets", junk)
        assert st.peek("secrets", "ns", f"j{i}") is not None
    # still working: a later, well-formed Secret is filled
    await st.create("secrets", token_secret("good", "x"))
    await wait.wait_for(
        lambda: ((st.peek("secrets", "ns", "good") or {}).get("data") or {}).get("token"),
        what="good secret filled",
    )
    # events are handled in order, so j2 (bad data, valid account) was seen first: repaired, not fatal
    assert isinstance((st.peek("secrets", "ns", "j2") or {}).get("data"), dict)
