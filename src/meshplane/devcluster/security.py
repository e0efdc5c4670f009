"""The dev cluster's security and admission parts, assembled for one `DevCluster`.

`app.DevCluster` keeps one `ClusterSecurity` for its lifetime and calls `prepare` at every start
(the store, object API and registry are new objects after a restart), `bootstrap` once the API
serves, and runs `controllers` as a task. The signing key is loaded (or made) once and kept in
the data dir, so a restarted cluster accepts the tokens it issued before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from meshplane.devcluster import errors
from meshplane.devcluster.admission import chain
from meshplane.devcluster.auth import accessreview, authn, rbac, tokenapi, tokens
from meshplane.devcluster.controllers import objects, serviceaccounts
from meshplane.devcluster.schema import resources
from meshplane.devcluster.storage import store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)


class ClusterSecurity:
    def __init__(self, name: str, data_dir: Path | None, clock: clock_mod.Clock) -> None:
        self.name = name
        self.data_dir = data_dir
        self.clock = clock
        self._key: tokens.SigningKey | None = None
        self._authn: authn.Authenticator | None = None
        self._authz: rbac.Authorizer | None = None
        self._admission: chain.Admission | None = None
        self._token_api: tokenapi.TokenApi | None = None
        self._controllers: serviceaccounts.ServiceAccountControllers | None = None

    @property
    def signing_key(self) -> tokens.SigningKey:
        """The cluster's service-account signing key (tests sign expired tokens with it)."""
        assert self._key is not None, "start() first"
        return self._key

    @property
    def authenticator(self) -> authn.Authenticator:
        assert self._authn is not None, "start() first"
        return self._authn

    @property
    def authorizer(self) -> rbac.Authorizer:
        assert self._authz is not None, "start() first"
        return self._authz

    @property
    def admission(self) -> chain.Admission:
        assert self._admission is not None, "start() first"
        return self._admission

    async def prepare(
        self,
        admin_token: str,
        st: store.Store,
        api: objects.ObjectApi,
        registry: resources.Registry,
        ca_pem: bytes,
    ) -> None:
        """Build the parts over this start's store and register the token endpoints."""
        if self._key is None:
            self._key = await asyncio.to_thread(tokens.load_or_create_key, self.data_dir)
        verifier = tokens.Verifier(self._key, st)
        self._authn = authn.Authenticator(admin_token, verifier, self.clock, self.name)
        self._authz = rbac.Authorizer(st, self.name)
        self._admission = chain.Admission(st, self.name)
        self._token_api = tokenapi.TokenApi(st, self._authn, self._key, self.clock, self.name)
        self._token_api.register(registry)
        accessreview.AccessReviews(self._authz, self.name).register(registry)
        self._controllers = serviceaccounts.ServiceAccountControllers(
            api, registry, self._key, ca_pem, self.name
        )

    async def bootstrap(self, api: objects.ObjectApi, registry: resources.Registry) -> None:
        """Create the bootstrap RBAC policy where missing, then one controller pass (default
        ServiceAccounts, kube-root-ca.crt) so that both exist when the cluster reports ready."""
        for key, obj in rbac.bootstrap_policy():
            group, _, plural = key.rpartition("/")
            rt = registry.lookup(group, "v1", plural)
            if rt is None or api.store.peek(key, "", obj["metadata"]["name"]) is not None:
                continue
            try:
                await api.create(rt, obj)
            except errors.ApiError as e:
                log.warning(
                    "bootstrap policy failed cluster=%s object=%s error=%s",
                    self.name,
                    obj["metadata"]["name"],
                    e,
                )
        assert self._controllers is not None
        await self._controllers.resync()

    async def controllers(self) -> None:
        """The ServiceAccount controllers, until cancelled."""
        assert self._controllers is not None
        await self._controllers.run()

    def issue_token(
        self,
        namespace: str,
        name: str,
        audiences: Sequence[str] = (),
        expiration_seconds: int = tokenapi.DEFAULT_EXPIRATION,
        bound: Obj | None = None,
    ) -> str:
        """A TokenRequest token for namespace/name, as `kubectl create token` would get."""
        assert self._token_api is not None, "start() first"
        return self._token_api.issue(namespace, name, audiences, expiration_seconds, bound)[0]
