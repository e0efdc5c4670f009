"""Bearer-token authentication: the admin token, service-account JWTs, legacy Secret tokens.

Mirrors kube-apiserver's union of token authenticators: the admin token is audience-agnostic
(valid only when the requested audiences include the API's), service-account tokens must carry a
requested audience. Failures read as Kubernetes writes them (`[invalid bearer token, ...]`).
Tokens never reach a log line.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from meshplane.devcluster import errors, seams
from meshplane.devcluster.auth import tokens
from meshplane.runtime import clock as clock_mod

log = logging.getLogger(__name__)

ADMIN_USER = "kubernetes-admin"
GROUP_MASTERS = "system:masters"
GROUP_AUTHENTICATED = "system:authenticated"
INVALID_BEARER = "invalid bearer token"


@dataclass(frozen=True, slots=True)
class Review:
    """The outcome of authenticating one token for a set of audiences (what TokenReview reports)."""

    user: seams.UserInfo | None
    audiences: tuple[str, ...] = ()
    error: str = ""

    @property
    def authenticated(self) -> bool:
        return self.user is not None


def admin_user(audiences: Sequence[str] = ()) -> seams.UserInfo:
    return seams.UserInfo(
        username=ADMIN_USER,
        groups=(GROUP_MASTERS, GROUP_AUTHENTICATED),
        audiences=tuple(audiences),
    )


class Authenticator:
    """Implements seams.Authenticator for the dev cluster's API, and the TokenReview check."""

    def __init__(
        self,
        admin_token: str,
        verifier: tokens.Verifier,
        clock: clock_mod.Clock,
        cluster: str = "",
    ) -> None:
        self._admin = admin_token.encode()
        self._verifier = verifier
        self._clock = clock
        self._cluster = cluster

    @property
    def api_audiences(self) -> tuple[str, ...]:
        return self._verifier.api_audiences

    async def authenticate(self, bearer_token: str | None) -> seams.UserInfo | None:
        if not bearer_token:
            return None
        result = await self.review(bearer_token, ())
        if result.user is None:
            log.debug("request not authenticated cluster=%s reason=%s", self._cluster, result.error)
        return result.user

    async def review(self, token: str, audiences: Sequence[str]) -> Review:
        """Authenticate `token` for `audiences` (the API audiences when empty), as TokenReview does."""
        requested = tuple(audiences) or self.api_audiences
        failures: list[str] = []
        if self._admin and hmac.compare_digest(token.encode(), self._admin):
            auds = tuple(a for a in self.api_audiences if a in requested)
            if auds:
                return Review(user=admin_user(auds), audiences=auds)
        try:
            found = await self._verifier.authenticate(token, self._clock.wall(), requested)
        except errors.TokenError as e:
            failures.append(str(e))
        else:
            if found is not None:
                info, auds = found
                return Review(user=info.user_info(auds), audiences=auds)
        if failures:
            return Review(user=None, error="[" + ", ".join([INVALID_BEARER, *failures]) + "]")
        return Review(user=None, error=INVALID_BEARER)
