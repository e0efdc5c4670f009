"""TokenReview through lightkube: ask one cluster's API server who a service-account token belongs to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from types import MappingProxyType

import lightkube
from lightkube.models.authentication_v1 import TokenReviewSpec
from lightkube.resources.authentication_v1 import TokenReview

from meshplane.kube import errors as kube_errors
from meshplane.model.ids import ClusterId
from meshplane.security import authenticate, errors

log = logging.getLogger(__name__)

REVIEW_TIMEOUT = 5.0


class KubeTokenReviewer:
    """A TokenReviewer for one cluster, using a lightkube client with its own credentials.

    The client's identity needs `create` on tokenreviews (istiod's ClusterRole on the primary,
    istio-reader-clusterrole on remotes)."""

    def __init__(
        self, client: lightkube.AsyncClient, cluster_id: ClusterId, timeout: float = REVIEW_TIMEOUT
    ) -> None:
        self._client = client
        self.cluster_id = cluster_id
        self._timeout = timeout

    async def review(self, token: str, audiences: Sequence[str]) -> authenticate.ReviewResult:
        obj = TokenReview(spec=TokenReviewSpec(token=token, audiences=list(audiences) or None))
        try:
            async with asyncio.timeout(self._timeout):
                res = await self._client.create(obj)
        except lightkube.ApiError as e:
            raise errors.ReviewerUnavailable(
                f"TokenReview refused by the API server ({kube_errors.describe(e)})"
            ) from e
        except TimeoutError as e:
            raise errors.ReviewerUnavailable(f"TokenReview timed out after {self._timeout}s") from e
        except Exception as e:  # transport errors: connection refused, TLS, DNS
            raise errors.ReviewerUnavailable(f"TokenReview failed: {type(e).__name__}: {e}") from e
        return to_result(res)


def to_result(res: TokenReview) -> authenticate.ReviewResult:
    status = res.status
    if status is None:
        return authenticate.ReviewResult(authenticated=False, error="the TokenReview has no status")
    user = status.user
    extra: dict[str, tuple[str, ...]] = {}
    if user is not None and isinstance(user.extra, dict):
        for k, v in user.extra.items():
            if isinstance(v, list):
                extra[str(k)] = tuple(str(x) for x in v)
    return authenticate.ReviewResult(
        authenticated=bool(status.authenticated),
        username=(user.username or "") if user else "",
        uid=(user.uid or "") if user else "",
        groups=tuple(user.groups or ()) if user else (),
        audiences=tuple(status.audiences or ()),
        extra=MappingProxyType(extra),
        error=status.error or "",
    )


class ClientReviewers:
    """RemoteReviewers over whatever tracks remote clusters (the multicluster controller): a
    cluster's reviewer is built from its current client, so a replaced remote secret takes effect
    at once and a removed one stops authenticating that cluster."""

    def __init__(
        self,
        client_for: Callable[[ClusterId], lightkube.AsyncClient | None],
        cluster_ids: Callable[[], Sequence[ClusterId]],
        timeout: float = REVIEW_TIMEOUT,
    ) -> None:
        self._client_for = client_for
        self._cluster_ids = cluster_ids
        self._timeout = timeout

    def get(self, cluster_id: ClusterId) -> KubeTokenReviewer | None:
        client = self._client_for(cluster_id)
        return KubeTokenReviewer(client, cluster_id, self._timeout) if client is not None else None

    def cluster_ids(self) -> Sequence[ClusterId]:
        return sorted(self._cluster_ids())
