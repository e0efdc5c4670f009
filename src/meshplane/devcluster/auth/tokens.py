"""Service-account tokens as Kubernetes issues and checks them (pkg/serviceaccount).

RS256 JWTs signed with one per-cluster RSA key. Bound tokens (TokenRequest) carry audiences, an
expiry and a `kubernetes.io` claim naming the ServiceAccount (and the Pod or Secret they are bound
to); legacy Secret tokens carry the `kubernetes.io/serviceaccount/...` claims and never expire.
A token stays valid only while the objects it names exist with the same uid. Error texts are
Kubernetes' own, because TokenReview answers show them to callers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from meshplane.devcluster import errors, seams
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
API_AUDIENCES: tuple[str, ...] = (ISSUER,)
# go-jose's DefaultLeeway, which Kubernetes applies to exp/nbf/iat and to deletion times.
LEEWAY_SECONDS = 60.0
# kubelet asks for 3607 s; kube-apiserver (--service-account-extend-token-expiration, default on)
# then issues such pod-bound API tokens for a year with a `warnafter` claim at 3607 s.
WARN_ONLY_EXPIRATION = 60 * 60 + 7
EXTENDED_EXPIRATION = 24 * 365 * 60 * 60
KEY_FILE = "sa.key"

SA_PREFIX = "system:serviceaccount:"
GROUP_ALL_SA = "system:serviceaccounts"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"

_LEGACY = "kubernetes.io/serviceaccount/"
LEGACY_NAMESPACE = _LEGACY + "namespace"
LEGACY_SECRET_NAME = _LEGACY + "secret.name"
LEGACY_SA_NAME = _LEGACY + "service-account.name"
LEGACY_SA_UID = _LEGACY + "service-account.uid"


_UNEXPECTED = "service account token claims could not be validated due to unexpected validation error"
_BAD_PRIVATE = "service account token claims could not be validated due to unexpected private claim"


class ObjectReader(Protocol):
    """Reads stored objects without copying (the dev cluster's Store): None when absent."""

    def peek(self, key: str, namespace: str, name: str) -> Obj | None: ...


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def from_private(cls, private: rsa.RSAPrivateKey) -> SigningKey:
        return cls(private=private, kid=key_id(private.public_key()))

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, claims: Obj) -> str:
        # go-jose writes only alg and kid in the header
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid, "typ": None})


def key_id(public: rsa.RSAPublicKey) -> str:
    """Kubernetes' kid: unpadded base64url of sha256 over the DER SubjectPublicKeyInfo."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def generate_key() -> SigningKey:
    return SigningKey.from_private(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def load_or_create_key(data_dir: Path | None) -> SigningKey:
    """The cluster's signing key, kept in `data_dir/sa.key` (0600). Blocking: call in a thread."""
    if data_dir is None:
        return generate_key()
    path = data_dir / KEY_FILE
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an RSA private key")
        return SigningKey.from_private(loaded)
    key = generate_key()
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.pem())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return key


def username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def split_username(user: str) -> tuple[str, str] | None:
    if not user.startswith(SA_PREFIX):
        return None
    parts = user[len(SA_PREFIX) :].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


@dataclass(frozen=True, slots=True)
class ServiceAccountInfo:
    namespace: str
    name: str
    uid: str
    pod_name: str = ""
    pod_uid: str = ""
    node_name: str = ""
    node_uid: str = ""
    credential_id: str = ""

    def user_info(self, audiences: Sequence[str]) -> seams.UserInfo:
        extra: dict[str, tuple[str, ...]] = {}
        if self.pod_name:
            extra[EXTRA_POD_NAME] = (self.pod_name,)
            extra[EXTRA_POD_UID] = (self.pod_uid,)
        if self.node_name:
            extra[EXTRA_NODE_NAME] = (self.node_name,)
            if self.node_uid:
                extra[EXTRA_NODE_UID] = (self.node_uid,)
        if self.credential_id:
            extra[EXTRA_CREDENTIAL_ID] = (self.credential_id,)
        return seams.UserInfo(
            username=username(self.namespace, self.name),
            uid=self.uid,
            groups=(GROUP_ALL_SA, f"{GROUP_ALL_SA}:{self.namespace}", "system:authenticated"),
            extra=extra,
            audiences=tuple(audiences),
        )


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _ref(obj: Obj) -> Obj:
    return {"name": str(_meta(obj).get("name", "")), "uid": str(_meta(obj).get("uid", ""))}


def bound_claims(
    sa: Obj,
    audiences: Sequence[str],
    expiration_seconds: int,
    now: float,
    *,
    pod: Obj | None = None,
    secret: Obj | None = None,
    node: Obj | None = None,
    jti: str | None = None,
    warn_after: int = 0,
) -> Obj:
    """The claims of a TokenRequest token (pkg/serviceaccount/claims.go), keys sorted as go-jose writes."""
    iat = int(now)
    k8s: Obj = {"namespace": str(_meta(sa).get("namespace", "")), "serviceaccount": _ref(sa)}
    if pod is not None:
        k8s["pod"] = _ref(pod)
    elif secret is not None:
        k8s["secret"] = _ref(secret)
    if node is not None:  # bound to a Node, or the node of the bound Pod
        k8s["node"] = _ref(node)
    if warn_after:
        k8s["warnafter"] = iat + warn_after
    claims: Obj = {
        "aud": list(audiences),
        "exp": iat + int(expiration_seconds),
        "iat": iat,
        "iss": ISSUER,
        "jti": jti or str(uuid.uuid4()),
        "kubernetes.io": dict(sorted(k8s.items())),
        "nbf": iat,
        "sub": username(k8s["namespace"], k8s["serviceaccount"]["name"]),
    }
    return claims


def legacy_claims(sa: Obj, secret_name: str) -> Obj:
    """The claims of a legacy Secret token (pkg/serviceaccount/legacy.go)."""
    ns = str(_meta(sa).get("namespace", ""))
    name = str(_meta(sa).get("name", ""))
    return {
        "iss": LEGACY_ISSUER,
        LEGACY_NAMESPACE: ns,
        LEGACY_SECRET_NAME: secret_name,
        LEGACY_SA_NAME: name,
        LEGACY_SA_UID: str(_meta(sa).get("uid", "")),
        "sub": username(ns, name),
    }


def peek_issuer(token: str) -> str | None:
    """The unverified `iss` of a compact JWT, or None when the text is not one (hasCorrectIssuer)."""
    if token.strip().startswith("{"):
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    iss = payload.get("iss") if isinstance(payload, dict) else None
    return iss if isinstance(iss, str) else None


def go_quote_list(items: Sequence[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(json.dumps(i) for i in items) + "]"


def _audiences(claims: Obj) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


class Verifier:
    """Checks tokens against the cluster's key and the objects they name."""

    def __init__(self, key: SigningKey, getter: ObjectReader, api_audiences: Sequence[str] = API_AUDIENCES):
        self._key = key
        self._getter = getter
        self._api_audiences = tuple(api_audiences)

    @property
    def api_audiences(self) -> tuple[str, ...]:
        return self._api_audiences

    async def authenticate(
        self, token: str, now: float, audiences: Sequence[str] | None = None
    ) -> tuple[ServiceAccountInfo, tuple[str, ...]] | None:
        """(info, audiences) for a valid token; None if the token is not this cluster's JWT.

        Raises errors.TokenError for a token with this cluster's issuer that fails a check.
        """
        iss = peek_issuer(token)
        if iss not in (ISSUER, LEGACY_ISSUER):
            return None
        claims = self._verified_claims(token)
        if claims is None:
            return None
        if claims.get("iss") not in (ISSUER, LEGACY_ISSUER):
            raise errors.TokenError(f"token issuer {json.dumps(claims.get('iss'))} is invalid")
        token_auds = _audiences(claims) or list(self._api_audiences)
        requested = list(audiences) if audiences else list(self._api_audiences)
        auds = tuple(a for a in requested if a in token_auds)
        if not auds:
            raise errors.TokenError(
                f"token audiences {go_quote_list(token_auds)} is invalid for the target audiences "
                f"{go_quote_list(requested)}"
            )
        if claims["iss"] == LEGACY_ISSUER:
            info = await self._validate_legacy(token, claims)
        else:
            info = await self._validate_bound(claims, now)
        return info, auds

    def _verified_claims(self, token: str) -> Obj | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            return None
        kid = header.get("kid")
        if kid and not hmac.compare_digest(str(kid), self._key.kid):
            raise errors.TokenError("invalid signature, no keys found")
        try:
            claims: Obj = jwt.decode(
                token,
                self._key.private.public_key(),
                algorithms=["RS256"],
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as e:
            raise errors.TokenError("go-jose/go-jose: error in cryptographic primitive") from e
        except jwt.PyJWTError:
            return None
        return claims

    async def _validate_bound(self, claims: Obj, now: float) -> ServiceAccountInfo:
        for name in ("exp", "nbf", "iat"):
            if name in claims and not isinstance(claims[name], int | float):
                raise errors.TokenError(
                    "service account token claims could not be validated due to unexpected validation error"
                )
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if exp is not None and now - LEEWAY_SECONDS >= exp:
            raise errors.TokenError("service account token has expired")
        if nbf is not None and now + LEEWAY_SECONDS < nbf:
            raise errors.TokenError("service account token is not valid yet")
        if iat is not None and now + LEEWAY_SECONDS < iat:
            raise errors.TokenError(
                "service account token claims could not be validated due to unexpected validation error"
            )
        k8s = claims.get("kubernetes.io")
        if not isinstance(k8s, dict):
            raise errors.TokenError(
                "service account token claims could not be validated due to unexpected private claim"
            )
        namespace = str(k8s.get("namespace", ""))
        saref = _claim_ref(k8s.get("serviceaccount"))
        sa = self._getter.peek("serviceaccounts", namespace, saref["name"])
        if sa is None:
            raise errors.TokenError(f'serviceaccounts "{saref["name"]}" not found')
        if _deleted_before(sa, now - LEEWAY_SECONDS):
            raise errors.TokenError(f"service account {namespace}/{saref['name']} has been deleted")
        sa_uid = str(_meta(sa).get("uid", ""))
        if sa_uid != saref["uid"]:
            raise errors.TokenError(f"service account UID ({sa_uid}) does not match claim ({saref['uid']})")
        info = ServiceAccountInfo(namespace=namespace, name=saref["name"], uid=saref["uid"])
        if "secret" in k8s:
            await self._check_bound("secrets", "secret", namespace, _claim_ref(k8s["secret"]), now)
        pod_name = pod_uid = node_name = node_uid = ""
        if "pod" in k8s:
            podref = _claim_ref(k8s["pod"])
            await self._check_bound("pods", "pod", namespace, podref, now)
            pod_name, pod_uid = podref["name"], podref["uid"]
        if "node" in k8s:
            noderef = _claim_ref(k8s["node"])
            await self._check_bound("nodes", "node", "", noderef, now)
            node_name, node_uid = noderef["name"], noderef["uid"]
        jti = claims.get("jti")
        return ServiceAccountInfo(
            namespace=info.namespace,
            name=info.name,
            uid=info.uid,
            pod_name=pod_name,
            pod_uid=pod_uid,
            node_name=node_name,
            node_uid=node_uid,
            credential_id=f"JTI={jti}" if isinstance(jti, str) and jti else "",
        )

    async def _check_bound(
        self, resource: str, what: str, namespace: str, ref: dict[str, str], now: float
    ) -> None:
        obj = self._getter.peek(resource, namespace, ref["name"])
        if obj is None or _deleted_before(obj, now - LEEWAY_SECONDS):
            raise errors.TokenError("service account token has been invalidated")
        uid = str(_meta(obj).get("uid", ""))
        if uid != ref["uid"]:
            raise errors.TokenError(
                f"{what} UID ({uid}) does not match service account {what} ref claim ({ref['uid']})"
            )

    async def _validate_legacy(self, token: str, claims: Obj) -> ServiceAccountInfo:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise errors.TokenError("sub claim is missing")
        fields = {}
        for claim, label in (
            (LEGACY_NAMESPACE, "namespace"),
            (LEGACY_SECRET_NAME, "secretName"),
            (LEGACY_SA_NAME, "serviceAccountName"),
            (LEGACY_SA_UID, "serviceAccountUID"),
        ):
            value = claims.get(claim)
            if not isinstance(value, str) or not value:
                raise errors.TokenError(f"{label} claim is missing")
            fields[label] = value
        namespace, name = fields["namespace"], fields["serviceAccountName"]
        if split_username(sub) != (namespace, name):
            raise errors.TokenError("sub claim is invalid")
        secret = self._getter.peek("secrets", namespace, fields["secretName"])
        if secret is None or _meta(secret).get("deletionTimestamp"):
            raise errors.TokenError("Token has been invalidated")
        stored = _secret_token(secret)
        if stored is None or not hmac.compare_digest(stored, token.encode()):
            raise errors.TokenError("Token does not match server's copy")
        sa = self._getter.peek("serviceaccounts", namespace, name)
        if sa is None:
            raise errors.TokenError(f'serviceaccounts "{name}" not found')
        if _meta(sa).get("deletionTimestamp"):
            raise errors.TokenError(f"ServiceAccount {namespace}/{name} has been deleted")
        sa_uid = str(_meta(sa).get("uid", ""))
        if sa_uid != fields["serviceAccountUID"]:
            raise errors.TokenError(
                f"ServiceAccount UID ({sa_uid}) does not match claim ({fields['serviceAccountUID']})"
            )
        return ServiceAccountInfo(namespace=namespace, name=name, uid=sa_uid)


def _claim_ref(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {"name": "", "uid": ""}
    return {"name": str(value.get("name", "")), "uid": str(value.get("uid", ""))}


def _secret_token(secret: Obj) -> bytes | None:
    data = secret.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        return None
    try:
        return base64.b64decode(data["token"], validate=True)
    except ValueError:
        return None


def _deleted_before(obj: Obj, cutoff: float) -> bool:
    ts = _meta(obj).get("deletionTimestamp")
    if not isinstance(ts, str) or not ts:
        return False
    return rfc3339.parse(ts) < cutoff
