"""Writes a lab Pod's status to the API whenever its worker marks it changed.

Changes are coalesced (marks during a write lead to one more write), unchanged statuses are not
written, a failed write is retried with backoff, and a Pod gone from the API ends the writer.
`flush()` lets the kubelet wait until what it just changed is in the API (before SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from lightkube.resources.core_v1 import Pod

from meshplane.kube import errors as kube_errors
from meshplane.lab import kubeapi
from meshplane.runtime import backoff as backoff_mod
from meshplane.runtime.jsonobj import Obj
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)


def comparable(status: Obj) -> Obj:
    """The status without unset fields (a merge patch's nulls delete them)."""
    return {k: v for k, v in status.items() if v is not None}


class StatusWriter:
    def __init__(
        self,
        api: kubeapi.Api,
        namespace: str,
        name: str,
        build: Callable[[Obj], Obj],
        initial: Obj,
        cluster: str,
    ) -> None:
        self.api, self.namespace, self.name, self.cluster = api, namespace, name, cluster
        self._build = build  # (last written status) -> status to write now
        self.sent: Obj = dict(initial)
        self._dirty = asyncio.Event()
        self._written = asyncio.Event()

    def mark(self) -> None:
        self._dirty.set()

    async def run(self) -> None:
        backoff = backoff_mod.Backoff(initial=0.2, maximum=5.0)
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            status = self._build(self.sent)
            if comparable(status) == comparable(self.sent):
                self._written.set()
                continue
            try:
                await self.api.patch(Pod.Status, self.name, {"status": status}, namespace=self.namespace)
                self.sent = status
                self._written.set()
                backoff.reset()
            except Exception as e:
                if kube_errors.is_not_found(e):
                    self._written.set()
                    return
                log.warning(
                    "pod status write failed %s",
                    kv(cluster=self.cluster, pod=f"{self.namespace}/{self.name}", error=repr(e)),
                )
                await asyncio.sleep(backoff.next())
                self._dirty.set()

    async def flush(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - bounded wait on our own writer
        """Write the current status now and wait (at most `timeout`) until it is written."""
        self._written.clear()
        self.mark()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._written.wait()
