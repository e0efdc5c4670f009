"""TokenRequest (`serviceaccounts/NAME/token`) and TokenReview (`tokenreviews`), as Kubernetes answers.

TokenRequest (pkg/registry/core/serviceaccount/storage/token.go): audiences default to the API's,
expirationSeconds to 3600 (at least 600, at most 2^32), optionally bound to a Pod, Secret or Node
of the same namespace. TokenReview (pkg/registry/authentication/tokenreview): an unauthenticated
token is an answer with `status.error`, never an HTTP error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from meshplane.devcluster import errors
from meshplane.devcluster.auth import authn, tokens
from meshplane.devcluster.schema import resources
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

AUTH_GROUP = "authentication.k8s.io"
AUTH_VERSION = f"{AUTH_GROUP}/v1"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32


def _invalid(field: str, value: Any, message: str) -> errors.ApiError:
    return errors.invalid(
        "TokenRequest", AUTH_GROUP, "", [("FieldValueInvalid", field, f"Invalid value: {value}: {message}")]
    )


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class TokenApi:
    """Issues bound tokens and reviews tokens for one dev cluster."""

    def __init__(
        self,
        reader: tokens.ObjectReader,
        authenticator: authn.Authenticator,
        key: tokens.SigningKey,
        clock: clock_mod.Clock,
        cluster: str = "",
    ) -> None:
        self._reader = reader
        self._authn = authenticator
        self._key = key
        self._clock = clock
        self._cluster = cluster

    def register(self, registry: resources.Registry) -> None:
        registry.add_subresource(
            "", "serviceaccounts", "token", "TokenRequest", self.token_request, response_group=AUTH_GROUP
        )
        review = resources.ResourceType(
            AUTH_GROUP,
            "v1",
            "TokenReview",
            "tokenreviews",
            "tokenreview",
            False,
            verbs=("create",),
            schema_name="io.k8s.api.authentication.v1.TokenReview",
        )
        registry.add_virtual(review, self.token_review)

    def issue(
        self,
        namespace: str,
        name: str,
        audiences: Sequence[str] = (),
        expiration_seconds: int = DEFAULT_EXPIRATION,
        bound: Obj | None = None,
    ) -> tuple[str, float]:
        """A bound token for ServiceAccount namespace/name: (token, expiry as Unix time)."""
        sa = self._reader.peek("serviceaccounts", namespace, name)
        if sa is None:
            raise errors.not_found("serviceaccounts", "", name)
        if not _int(expiration_seconds) or expiration_seconds < MIN_EXPIRATION:
            raise _invalid(
                "spec.expirationSeconds",
                expiration_seconds,
                "may not specify a duration less than 10 minutes",
            )
        if expiration_seconds > MAX_EXPIRATION:
            raise _invalid(
                "spec.expirationSeconds",
                expiration_seconds,
                "may not specify a duration larger than 2^32 seconds",
            )
        pod = secret = node = None
        if bound is not None:
            pod, secret, node = self._bound_object(namespace, name, bound)
        auds = list(audiences) or list(self._authn.api_audiences)
        now = self._clock.wall()
        exp, warn_after = expiration_seconds, 0
        if (
            pod is not None
            and exp == tokens.WARN_ONLY_EXPIRATION
            and set(auds) <= set(self._authn.api_audiences)
        ):
            exp, warn_after = tokens.EXTENDED_EXPIRATION, expiration_seconds  # kubelet's API token
        claims = tokens.bound_claims(
            sa, auds, exp, now, pod=pod, secret=secret, node=node, warn_after=warn_after
        )
        log.info(
            "issued token cluster=%s serviceaccount=%s/%s audiences=%s expires_in=%ss bound=%s",
            self._cluster,
            namespace,
            name,
            ",".join(auds),
            expiration_seconds,
            (bound or {}).get("kind", ""),
        )
        # the status reports the requested expiry, even for an extended token (as Kubernetes)
        return self._key.sign(claims), float(claims["iat"] + expiration_seconds)

    def _bound_object(
        self, namespace: str, sa_name: str, ref: Obj
    ) -> tuple[Obj | None, Obj | None, Obj | None]:
        kind, api_version = str(ref.get("kind") or ""), str(ref.get("apiVersion") or "")
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        name = str(ref.get("name") or "")
        pod = secret = node = None
        if group == "" and kind == "Pod":
            pod = self._reader.peek("pods", namespace, name)
            if pod is None:
                raise errors.not_found("pods", "", name)
            running_as = str((pod.get("spec") or {}).get("serviceAccountName") or "")
            if running_as != sa_name:
                why = f'cannot bind token for serviceaccount "{sa_name}" to pod running with serviceaccount'
                raise errors.bad_request(f'{why} "{running_as}"')
            node_name = (pod.get("spec") or {}).get("nodeName")
            if isinstance(node_name, str) and node_name:
                node = self._reader.peek("nodes", "", node_name)
            obj = pod
        elif group == "" and kind == "Secret":
            secret = self._reader.peek("secrets", namespace, name)
            if secret is None:
                raise errors.not_found("secrets", "", name)
            obj = secret
        elif group == "" and kind == "Node":
            node = self._reader.peek("nodes", "", name)
            if node is None:
                raise errors.not_found("nodes", "", name)
            obj = node
        else:
            version = api_version.rpartition("/")[2]
            raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
        uid = str((obj.get("metadata") or {}).get("uid", ""))
        if ref.get("uid") and ref.get("uid") != uid:
            raise errors.conflict(
                kind,
                group,
                name,
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record "
                f"({uid}). The object might have been deleted and then recreated",
            )
        return pod, secret, node

    async def token_request(self, req: resources.HandlerRequest) -> tuple[int, Obj]:
        body = req.body if isinstance(req.body, dict) else {}
        if body.get("kind") not in (None, "TokenRequest") or body.get("apiVersion") not in (
            None,
            AUTH_VERSION,
        ):
            raise errors.bad_request(
                f"the body of the request was in an unknown format: expected {AUTH_VERSION} TokenRequest, "
                f"got {body.get('apiVersion')} {body.get('kind')}"
            )
        raw_spec = body.get("spec")
        spec: Obj = raw_spec if isinstance(raw_spec, dict) else {}
        auds = spec.get("audiences")
        if auds is not None and not (isinstance(auds, list) and all(isinstance(a, str) for a in auds)):
            raise errors.bad_request("spec.audiences must be a list of strings")
        exp = spec.get("expirationSeconds")
        exp = DEFAULT_EXPIRATION if exp is None else exp
        if not _int(exp):
            raise errors.bad_request("spec.expirationSeconds must be an integer")
        bound = spec.get("boundObjectRef")
        if bound is not None and not isinstance(bound, dict):
            raise errors.bad_request("spec.boundObjectRef must be an object")
        if self._reader.peek("serviceaccounts", req.namespace, req.name) is None:
            raise errors.not_found("serviceaccounts", "", req.name)
        audiences = list(auds or []) or list(self._authn.api_audiences)
        token, expiry = self.issue(req.namespace, req.name, audiences, exp, bound)
        out: Obj = {
            "kind": "TokenRequest",
            "apiVersion": AUTH_VERSION,
            "metadata": {"name": req.name, "namespace": req.namespace, "creationTimestamp": None},
            "spec": {"audiences": audiences, "expirationSeconds": exp, "boundObjectRef": bound},
            "status": {"token": token, "expirationTimestamp": rfc3339.format(expiry)},
        }
        return 201, out

    async def token_review(self, req: resources.HandlerRequest) -> tuple[int, Obj]:
        body = req.body if isinstance(req.body, dict) else {}
        raw_spec = body.get("spec")
        spec: Obj = raw_spec if isinstance(raw_spec, dict) else {}
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise errors.bad_request("token is required for TokenReview in authentication")
        auds = spec.get("audiences")
        if auds is not None and not (isinstance(auds, list) and all(isinstance(a, str) for a in auds)):
            raise errors.bad_request("spec.audiences must be a list of strings")
        review = await self._authn.review(token, auds or ())
        status: Obj
        if review.user is not None:
            status = {
                "authenticated": True,
                "user": review.user.to_json(),
                "audiences": list(review.audiences),
            }
        else:
            status = {"user": {}, "error": review.error}
        log.info(
            "token review cluster=%s by=%s authenticated=%s user=%s",
            self._cluster,
            req.user.username,
            review.authenticated,
            review.user.username if review.user else "",
        )
        out_spec: Obj = {"token": token}
        if auds:
            out_spec["audiences"] = list(auds)
        out: Obj = {
            "kind": "TokenReview",
            "apiVersion": AUTH_VERSION,
            "metadata": {"creationTimestamp": None},
            "spec": out_spec,
            "status": status,
        }
        return 201, out
