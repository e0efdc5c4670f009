"""An in-memory TokenReviewer for tests that do not need an API server (unit and agent tests).

It answers like a Kubernetes API server would: known tokens map to a service account and the
audiences they were issued for; anything else is `authenticated: false`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from meshplane.model.ids import ClusterId
from meshplane.security import authenticate


def jwt_shaped() -> str:
    """An opaque token with a JWT's shape (three base64url parts)."""
    return ".".join(secrets.token_urlsafe(12) for _ in range(3))


@dataclass
class FakeReviewer:
    # token -> (namespace, service account, audiences the token is valid for)
    tokens: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def issue(self, namespace: str, sa: str, audiences: Sequence[str] = ("istio-ca",)) -> str:
        token = jwt_shaped()
        self.tokens[token] = (namespace, sa, tuple(audiences))
        return token

    async def review(self, token: str, audiences: Sequence[str]) -> authenticate.ReviewResult:
        self.calls.append((token, tuple(audiences)))
        entry = self.tokens.get(token)
        if entry is None:
            return authenticate.ReviewResult(authenticated=False, error="[invalid bearer token]")
        ns, sa, valid_for = entry
        matched = tuple(a for a in audiences if a in valid_for) if audiences else valid_for
        if not matched:
            return authenticate.ReviewResult(
                authenticated=False, error="[invalid bearer token, token audiences are invalid]"
            )
        return authenticate.ReviewResult(
            authenticated=True,
            username=f"system:serviceaccount:{ns}:{sa}",
            groups=("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"),
            audiences=matched,
            extra={"authentication.kubernetes.io/pod-name": ("pod-1",)},
        )


class ReviewerRegistry:
    """A mutable RemoteReviewers (the remote clusters' reviewers, by cluster ID) set by the test."""

    def __init__(self) -> None:
        self._reviewers: dict[ClusterId, authenticate.TokenReviewer] = {}

    def set(self, cluster_id: ClusterId, reviewer: authenticate.TokenReviewer) -> None:
        self._reviewers[cluster_id] = reviewer

    def remove(self, cluster_id: ClusterId) -> None:
        self._reviewers.pop(cluster_id, None)

    def get(self, cluster_id: ClusterId) -> authenticate.TokenReviewer | None:
        return self._reviewers.get(cluster_id)

    def cluster_ids(self) -> Sequence[ClusterId]:
        return sorted(self._reviewers)
