"""Who is calling: Istio's authenticator chain for the CA and for xDS streams.

Order as in istiod (security/pkg/server/ca/server.go): a verified mesh client certificate first,
then the Kubernetes service-account JWT, validated by a TokenReview on the API server of the
cluster the caller claims (metadata `clusterid`), with audience `istio-ca`. The first success
wins; when all fail the error lists every reason. Tokens never reach logs or error texts.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import grpc
from cryptography import x509
from cryptography.x509 import verification

from meshplane.model.ids import ClusterId
from meshplane.runtime import clock as clock_mod
from meshplane.security import ca, errors, spiffe

log = logging.getLogger(__name__)

TOKEN_AUDIENCES: tuple[str, ...] = ("istio-ca",)
CLUSTER_ID_KEY = "clusterid"
AUTHORIZATION_KEY = "authorization"
BEARER_PREFIX = "Bearer "
SA_GROUP = "system:serviceaccounts"
SA_USER_PREFIX = "system:serviceaccount:"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
MAX_TOKEN_BYTES = 16 * 1024

SOURCE_CLIENT_CERT = "ClientCertificate"
SOURCE_ID_TOKEN = "IDToken"

_EMPTY_EXTRA: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Caller:
    identities: tuple[str, ...]
    source: str
    cluster_id: ClusterId | None = None
    namespace: str = ""
    service_account: str = ""
    pod_name: str = ""
    pod_uid: str = ""


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """The credentials of one RPC or stream, independent of grpc for testing and reuse."""

    metadata: Mapping[str, tuple[str, ...]]  # lower-case key -> every value sent
    peer_cert_pem: bytes | None = None  # the TLS client certificate, if one was presented
    peer: str = ""

    def values(self, key: str) -> tuple[str, ...]:
        return self.metadata.get(key, ())


def request_from_context(context: grpc.aio.ServicerContext[Any, Any]) -> AuthRequest:
    md: dict[str, list[str]] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, bytes):  # `-bin` keys; never credentials here
            continue
        md.setdefault(key.lower(), []).append(value)
    cert: bytes | None = None
    try:
        auth = context.auth_context()
        if auth.get("transport_security_type") == [b"ssl"] and auth.get("x509_pem_cert"):
            cert = auth["x509_pem_cert"][0]
    except Exception:  # no auth context on a plaintext server
        cert = None
    return AuthRequest({k: tuple(v) for k, v in md.items()}, cert, context.peer() or "")


@dataclass(frozen=True, slots=True)
class ReviewResult:
    """The `status` of a TokenReview (authentication.k8s.io/v1)."""

    authenticated: bool
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY_EXTRA)
    error: str = ""


class TokenReviewer(Protocol):
    async def review(self, token: str, audiences: Sequence[str]) -> ReviewResult:
        """Create a TokenReview; raise errors.ReviewerUnavailable when it cannot be made."""
        ...


class RemoteReviewers(Protocol):
    """The remote clusters the control plane knows (from remote secrets) and their reviewers."""

    def get(self, cluster_id: ClusterId) -> TokenReviewer | None: ...

    def cluster_ids(self) -> Sequence[ClusterId]: ...


class Authenticator(Protocol):
    name: str

    async def authenticate(self, request: AuthRequest) -> Caller | None:
        """A Caller, or None when the request carries no credential of this kind.
        Raises errors.AuthenticationError when the credential is present but not valid."""
        ...


class ClientCertAuthenticator:
    """A TLS client certificate that chains to the mesh CA and carries SPIFFE URI SANs."""

    name = "ClientCertAuthenticator"

    def __init__(self, mesh_ca: ca.MeshCA, clock: clock_mod.Clock | None = None) -> None:
        self._ca = mesh_ca
        self._clock = clock or clock_mod.SystemClock()

    async def authenticate(self, request: AuthRequest) -> Caller | None:
        if not request.peer_cert_pem:
            return None
        try:
            leaf = x509.load_pem_x509_certificate(request.peer_cert_pem)
        except ValueError as e:
            raise errors.AuthenticationError("client certificate cannot be parsed") from e
        # during a CA rotation's transition, certificates of the replaced CA are still accepted
        bundles = self._ca.trusted()
        roots = list(dict.fromkeys(b.root for b in bundles))
        intermediates = list(dict.fromkeys(c for b in bundles for c in b.intermediates))
        now = dt.datetime.fromtimestamp(self._clock.wall(), dt.UTC)
        verifier = (
            verification.PolicyBuilder().store(verification.Store(roots)).time(now).build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
        except verification.VerificationError as e:
            raise errors.AuthenticationError(f"client certificate is not issued by the mesh CA ({e})") from e
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound as e:
            raise errors.AuthenticationError("client certificate has no SAN") from e
        ids = tuple(
            u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith(spiffe.SCHEME)
        )
        if not ids:
            raise errors.AuthenticationError("client certificate has no SPIFFE identity")
        return Caller(identities=ids, source=SOURCE_CLIENT_CERT)


class KubeJwtAuthenticator:
    """Istio's KubeJWTAuthenticator: a TokenReview on the claimed cluster, audience istio-ca."""

    name = "KubeJWTAuthenticator"

    def __init__(
        self,
        local_cluster_id: ClusterId,
        local_reviewer: TokenReviewer,
        remotes: RemoteReviewers,
        *,
        trust_domain: str = spiffe.DEFAULT_TRUST_DOMAIN,
        audiences: Sequence[str] = TOKEN_AUDIENCES,
        local_aliases: Sequence[ClusterId] = (),
    ) -> None:
        self.local_cluster_id = local_cluster_id
        self._local = local_reviewer
        self._remotes = remotes
        self._trust_domain = trust_domain
        self._audiences = tuple(audiences)
        self._aliases = frozenset(local_aliases)

    async def authenticate(self, request: AuthRequest) -> Caller | None:
        token = bearer_token(request)
        cluster_id = claimed_cluster(request)
        reviewer = self.reviewer_for(cluster_id)
        prefix = f"failed to validate the JWT from cluster {cluster_id!r}"
        try:
            result = await reviewer.review(token, self._audiences)
        except errors.ReviewerUnavailable as e:
            raise errors.ReviewerUnavailable(f"{prefix}: {e}") from e
        try:
            namespace, sa = check_review(result, self._audiences)
        except errors.AuthenticationError as e:
            raise errors.AuthenticationError(f"{prefix}: {e}") from e
        extra = result.extra
        return Caller(
            identities=(spiffe.identity(namespace, sa, self._trust_domain),),
            source=SOURCE_ID_TOKEN,
            cluster_id=self.local_cluster_id if self.is_local(cluster_id) else cluster_id,
            namespace=namespace,
            service_account=sa,
            pod_name=next(iter(extra.get(POD_NAME_EXTRA, ())), ""),
            pod_uid=next(iter(extra.get(POD_UID_EXTRA, ())), ""),
        )

    def is_local(self, cluster_id: ClusterId) -> bool:
        return not cluster_id or cluster_id == self.local_cluster_id or cluster_id in self._aliases

    def reviewer_for(self, cluster_id: ClusterId) -> TokenReviewer:
        if self.is_local(cluster_id):
            return self._local
        reviewer = self._remotes.get(cluster_id)
        if reviewer is None:
            known = " ".join(self._remotes.cluster_ids())
            raise errors.AuthenticationError(
                f'client claims to be in cluster "{cluster_id}", but we only know about local cluster '
                f'"{self.local_cluster_id}" and remote clusters [{known}]'
            )
        return reviewer


def bearer_token(request: AuthRequest) -> str:
    values = request.values(AUTHORIZATION_KEY)
    if not values:
        raise errors.AuthenticationError("no bearer token in the authorization metadata")
    if len(values) > 1:
        raise errors.AuthenticationError("more than one authorization metadata value")
    value = values[0]
    if not value.startswith(BEARER_PREFIX):
        raise errors.AuthenticationError("the authorization metadata is not of the form 'Bearer <token>'")
    token = value[len(BEARER_PREFIX) :].strip()
    if not token:
        raise errors.AuthenticationError("empty bearer token")
    if len(token) > MAX_TOKEN_BYTES:
        raise errors.AuthenticationError(f"bearer token longer than {MAX_TOKEN_BYTES} bytes")
    if token.count(".") != 2 or not all(c.isascii() and (c.isalnum() or c in "-_.=") for c in token):
        raise errors.AuthenticationError("the bearer token is not a JWT")
    return token


def claimed_cluster(request: AuthRequest) -> ClusterId:
    values = request.values(CLUSTER_ID_KEY)
    if len(values) > 1:
        raise errors.AuthenticationError("more than one clusterid metadata value")
    return ClusterId(values[0].strip() if values else "")


def check_review(result: ReviewResult, audiences: Sequence[str]) -> tuple[str, str]:
    """Istio's getTokenReviewResult plus an audience check; returns (namespace, service account)."""
    if result.error:
        raise errors.AuthenticationError(
            f"the service account authentication returns an error: {result.error}"
        )
    if not result.authenticated:
        raise errors.AuthenticationError("the token is not authenticated")
    if audiences and not set(audiences) & set(result.audiences):
        raise errors.AuthenticationError(
            f"the token is not valid for audience {', '.join(audiences)} "
            f"(valid for: {list(result.audiences)})"
        )
    if SA_GROUP not in result.groups:
        raise errors.AuthenticationError("the token is not a service account")
    parts = result.username.split(":")
    if len(parts) != 4 or not result.username.startswith(SA_USER_PREFIX) or not parts[2] or not parts[3]:
        raise errors.AuthenticationError("invalid username field in the token review result")
    return parts[2], parts[3]


class Chain:
    """Runs authenticators in order; the first Caller wins, else one error naming every reason."""

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        self.authenticators = tuple(authenticators)

    async def authenticate(self, request: AuthRequest) -> Caller:
        reasons: list[str] = []
        for a in self.authenticators:
            try:
                caller = await a.authenticate(request)
            except errors.AuthenticationError as e:
                reasons.append(f"{a.name}: {e}")
                continue
            if caller is not None:
                return caller
        raise errors.AuthenticationError("; ".join(reasons) or "no credential presented")
