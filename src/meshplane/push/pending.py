"""A connection's pending push: at most one, newer pushes merge into it (never a backlog).

While a connection is still busy sending push k, pushes k+1, k+2... arrive here and merge into a
single pending one that uses the newest PushContext; the merged request keeps the earliest start
time so convergence is measured from the first change the proxy had not seen yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshplane.push import context


@dataclass(frozen=True, slots=True)
class Push:
    ctx: context.PushContext
    request: context.PushRequest
    enqueued: float  # clock time the first merged push was offered (pilot_proxy_queue_time)


class PendingPush:
    __slots__ = ("_push",)

    def __init__(self) -> None:
        self._push: Push | None = None

    def offer(self, ctx: context.PushContext, request: context.PushRequest, now: float) -> bool:
        """Store or merge a push; True when it merged into one already waiting."""
        current = self._push
        if current is None:
            self._push = Push(ctx, request, now)
            return False
        self._push = Push(ctx, current.request.merge(request), current.enqueued)
        return True

    def take(self) -> Push | None:
        push, self._push = self._push, None
        return push

    def __bool__(self) -> bool:
        return self._push is not None
