"""Where the CA's key material lives: Secrets in the control plane's namespace of the primary.

`cacerts` (a plugged-in intermediate) wins when present; otherwise the self-signed root in
`istio-ca-secret`, created at first start and reused ever after. Several control planes may start
at once: the Secret is created under its fixed name and a 409 means another one won, so the
stored root is read back and used (never two roots). Bad material is an error naming the Secret
and the key, never a silent fallback to a new root.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import logging
from collections.abc import Mapping

import lightkube
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from meshplane.kube import errors as kube_errors
from meshplane.runtime import clock as clock_mod
from meshplane.runtime.logging import kv
from meshplane.security import ca, errors

log = logging.getLogger(__name__)

CACERTS_SECRET = "cacerts"
SELF_SIGNED_SECRET = "istio-ca-secret"
SELF_SIGNED_TYPE = "istio.io/ca-root"
# istio-ca-secret carries these keys; only ca-cert.pem and ca-key.pem are filled for a root.
_EMPTY_KEYS = ("cert-chain.pem", "key.pem", "root-cert.pem")


class CaStore:
    def __init__(
        self,
        client: lightkube.AsyncClient,
        namespace: str,
        *,
        org: str = "cluster.local",
        root_ttl: dt.timedelta = ca.SELF_SIGNED_ROOT_TTL,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self._client = client
        self.namespace = namespace
        self._org = org
        self._root_ttl = root_ttl
        self._clock = clock
        self.source = ""  # which Secret the loaded bundle came from

    async def load(self) -> ca.KeyCertBundle:
        """The CA bundle: cacerts, else istio-ca-secret, else a new root stored in istio-ca-secret."""
        bundle = await self.read()
        return bundle if bundle is not None else await self._create_root()

    async def read(self) -> ca.KeyCertBundle | None:
        """What is stored now (cacerts, else istio-ca-secret), checked; None when neither exists.
        `source` changes only when a bundle is returned; bad material raises CaMaterialError."""
        plugged = await self._get(CACERTS_SECRET)
        if plugged is not None:
            bundle = await asyncio.to_thread(ca.bundle_from_cacerts, _decode(plugged, CACERTS_SECRET))
            self.source = CACERTS_SECRET
            log.info("using plugged-in CA %s", kv(namespace=self.namespace, secret=CACERTS_SECRET))
            return bundle
        stored = await self._get(SELF_SIGNED_SECRET)
        if stored is None:
            return None
        bundle = await asyncio.to_thread(ca.bundle_from_self_signed, _decode(stored, SELF_SIGNED_SECRET))
        self.source = SELF_SIGNED_SECRET
        log.info("using stored self-signed root %s", kv(namespace=self.namespace, secret=SELF_SIGNED_SECRET))
        return bundle

    async def renew_self_signed(self, grace_percent: int) -> bool:
        """Istio's checkAndRotateRootCertForSigningCertCitadel: when the self-signed root is in its
        grace period (the last `grace_percent` % of its lifetime), store a new root certificate for
        the same key in istio-ca-secret. The write carries the read's resourceVersion, so when
        several control planes renew at once one wins and the others get a 409 (False). The
        watch (carotation) then reloads it everywhere. True when this call wrote it."""
        if self.source != SELF_SIGNED_SECRET:
            return False  # a plugged-in CA is rotated by its operator
        stored = await self._get(SELF_SIGNED_SECRET)
        if stored is None:
            return False
        bundle = await asyncio.to_thread(ca.bundle_from_self_signed, _decode(stored, SELF_SIGNED_SECRET))
        now = dt.datetime.fromtimestamp((self._clock or clock_mod.SystemClock()).wall(), dt.UTC)
        if not ca.in_grace_period(bundle.root, grace_percent, now):
            return False
        new = await asyncio.to_thread(
            ca.self_signed_root, self._org, self._root_ttl, self._clock, bundle.signing_key
        )
        stored.data = {
            **(stored.data or {}),
            ca.SELF_SIGNED_CERT: base64.b64encode(new.root_pem.encode()).decode(),
        }
        try:
            await self._client.replace(stored)
        except lightkube.ApiError as e:
            if kube_errors.is_conflict(e):
                log.info("another control plane renewed the root first %s", kv(namespace=self.namespace))
                return False
            raise errors.CaMaterialError(
                f"cannot update Secret {self.namespace}/{SELF_SIGNED_SECRET}: {_msg(e)}"
            ) from e
        log.info(
            "self-signed root renewed for the same key %s",
            kv(namespace=self.namespace, secret=SELF_SIGNED_SECRET, not_after=new.root.not_valid_after_utc),
        )
        return True

    async def _create_root(self) -> ca.KeyCertBundle:
        bundle = await asyncio.to_thread(ca.self_signed_root, self._org, self._root_ttl, self._clock)
        data = {
            ca.SELF_SIGNED_CERT: base64.b64encode(bundle.root_pem.encode()).decode(),
            ca.SELF_SIGNED_KEY: base64.b64encode(ca.key_pem(bundle.signing_key)).decode(),
            **{k: "" for k in _EMPTY_KEYS},
        }
        secret = Secret(
            metadata=ObjectMeta(name=SELF_SIGNED_SECRET, namespace=self.namespace),
            type=SELF_SIGNED_TYPE,
            data=data,
        )
        try:
            await self._client.create(secret)
        except lightkube.ApiError as e:
            if not kube_errors.is_conflict(e):
                raise errors.CaMaterialError(
                    f"cannot create Secret {self.namespace}/{SELF_SIGNED_SECRET}: {_msg(e)}"
                ) from e
            log.info(
                "another control plane created the root first, using it %s", kv(namespace=self.namespace)
            )
            stored = await self._get(SELF_SIGNED_SECRET)
            if stored is None:
                raise errors.CaMaterialError(
                    f"Secret {self.namespace}/{SELF_SIGNED_SECRET} existed (409) but is gone"
                ) from e
            self.source = SELF_SIGNED_SECRET
            return await asyncio.to_thread(ca.bundle_from_self_signed, _decode(stored, SELF_SIGNED_SECRET))
        self.source = SELF_SIGNED_SECRET
        log.info("created self-signed root %s", kv(namespace=self.namespace, secret=SELF_SIGNED_SECRET))
        return bundle

    async def _get(self, name: str) -> Secret | None:
        try:
            return await self._client.get(Secret, name, namespace=self.namespace)
        except lightkube.ApiError as e:
            if kube_errors.is_not_found(e):
                return None
            raise errors.CaMaterialError(f"cannot read Secret {self.namespace}/{name}: {_msg(e)}") from e


def _decode(secret: Secret, name: str) -> Mapping[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in (secret.data or {}).items():
        try:
            out[k] = base64.b64decode(v or "", validate=True)
        except (binascii.Error, ValueError) as e:
            raise errors.CaMaterialError(f"Secret {name}: key {k} is not base64") from e
    for k, v in (secret.stringData or {}).items():  # only seen on objects built locally
        out.setdefault(k, (v or "").encode())
    return out


def _msg(e: lightkube.ApiError) -> str:
    return str(getattr(e.status, "message", "") or e)
