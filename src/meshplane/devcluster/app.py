"""`DevCluster`: the composition root of the dev cluster, and its in-process Python API.

    async with DevCluster(name="c1", data_dir=None, host="127.0.0.1", port=0) as c:
        c.url, c.host, c.port, c.ca_pem, c.admin_token, c.kubeconfig(path=None) -> text,
        c.write_kubeconfig(path), c.kubeconfig_dict()
        await c.stop(); await c.start()   # same port, same CA and token, same data

Internal APIs for the security/admission parts and other controllers (stable):

- `c.store` (store.Store), resource keys are `plural` for core and `group/plural` otherwise:
  `get(key, ns, name) -> dict | None` (a copy), `list(key, ns=None) -> list[dict]` (copies),
  `peek`/`items` (read-only views), `await create(key, obj)`, `await update(key, obj,
  expected_rv=None)`, `await delete(key, ns, name)`, `await delete_many(key, [(ns, name)])`: the
  same RV/event/persistence path as REST writes (no validation, no admission).
  `subscribe(keys=None) -> Subscription` (`async for ev in sub` / `await sub.get()`; `sub.close()`);
  events are `store.Event(type, key, obj, rv, old)` with read-only `obj`/`old`.
  `add_hook(fn)` runs `fn(event)` synchronously for every committed event.
- `c.objects` (objects.ObjectApi): `await create(rt, obj)`, `update`, `delete(rt, ns, name,
  DeleteOptions())`: REST semantics (namespace checks, generateName, ClusterIPs, finalizers).
- `c.registry` (resources.Registry): `lookup(group, version, plural)`, `by_kind(...)`,
  `add_subresource(group, plural, subresource, kind, handler, verbs=("create",), response_group=...)`
  and `add_virtual(ResourceType, handler)`; a handler gets a `resources.HandlerRequest` and returns
  `(http_code, obj)`. Both go through authn/authz and are listed in discovery.
- `c.add_controller(name, factory)`: `factory()` returns a coroutine run as a guarded task from
  start to stop; it is called again at every start, and `c.store`/`c.objects`/`c.registry` are new
  objects after a restart, so read them inside the coroutine, not when registering.
- `c.security` (security.ClusterSecurity, helper B's): service-account tokens, RBAC, admission
  and the ServiceAccount controllers, wired at each start. Assigning `c.authenticator`,
  `c.authorizer` or `c.admission` (seams Protocols) before `start()` overrides its parts.
- Store writes change nothing when the new object equals the stored one (no RV, no event), and
  run to completion even if their caller is cancelled.
- `c.ca_pem` (bytes), `c.data_dir` (Path | None: keep keys there, 0600), `c.url`, `c.settings`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from meshplane.devcluster import kubeconfig, seams, security
from meshplane.devcluster.api import context, dispatch, eviction, openapi, podstreams, server
from meshplane.devcluster.auth import pki
from meshplane.devcluster.controllers import bootstrap, disruption, gc, objects
from meshplane.devcluster.schema import crds, defaults, resources, schemas
from meshplane.devcluster.storage import persistence, store
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import tasks

log = logging.getLogger(__name__)

ControllerFactory = Callable[[], Coroutine[Any, Any, Any]]


class DevCluster:
    def __init__(
        self,
        name: str = "cluster",
        data_dir: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        service_cidr: str = "10.96.0.0/16",
        settings: context.Settings | None = None,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self.name = name
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.host = host
        self.port = port
        self.settings = settings or context.Settings()
        self.settings.name = name
        self.clock: clock_mod.Clock = clock or clock_mod.SystemClock()
        self.service_ips = defaults.ServiceIPs(service_cidr)
        self.authenticator: seams.Authenticator | None = None
        self.authorizer: seams.Authorizer | None = None
        self.admission: seams.Admission | None = None
        self._controllers: list[tuple[str, ControllerFactory]] = []
        self._pki: pki.ClusterPki | None = None
        self._server: server.HttpsServer | None = None
        self._tasks: tasks.TaskGroup | None = None
        self.store: store.Store = self._new_store()
        self.registry = resources.Registry.with_builtins()
        self.schemas: schemas.Schemas | None = None
        self.objects = objects.ObjectApi(self.store, self.clock, self.service_ips)
        self.ctx: context.ApiContext | None = None
        self._used = False
        self.security = security.ClusterSecurity(name, self.data_dir, self.clock)

    def _new_store(self) -> store.Store:
        persist: persistence.Persistence = (
            persistence.SqlitePersistence(self.data_dir / "store.db")
            if self.data_dir
            else persistence.MemoryPersistence()
        )
        return store.Store(persist, self.clock, history_size=self.settings.history_size, cluster=self.name)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        assert self._pki is not None, "start() first"
        return self._pki.ca_cert_pem

    @property
    def admin_token(self) -> str:
        assert self._pki is not None, "start() first"
        return self._pki.admin_token

    def add_controller(self, name: str, factory: ControllerFactory) -> None:
        self._controllers.append((name, factory))
        if self._tasks is not None:
            self._tasks.start(factory(), name)

    def kubeconfig_dict(self) -> dict[str, Any]:
        return kubeconfig.build(self.name, self.url, self.ca_pem, self.admin_token)

    def kubeconfig(self, path: str | Path | None = None) -> str:
        """The kubeconfig text (cluster, user and context named after the cluster); also written
        to `path` (0600) when one is given."""
        if path is not None:
            self.write_kubeconfig(path)
        return kubeconfig.dump(self.kubeconfig_dict())

    def write_kubeconfig(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o600, exist_ok=True)
        p.chmod(0o600)
        p.write_text(kubeconfig.dump(self.kubeconfig_dict()))
        return p

    async def start(self) -> None:
        if self._server is not None:
            return
        if self.data_dir is not None:
            await asyncio.to_thread(self.data_dir.mkdir, parents=True, exist_ok=True)
        if self._pki is None:
            self._pki = await asyncio.to_thread(pki.load_or_create, self.name, self.data_dir)
        if self.schemas is None:
            await asyncio.to_thread(schemas.builtin_components)  # load (once) off the loop
            self.schemas = schemas.Schemas()
        if self._used:  # a restart: a fresh store (and registry) over the same data
            self.store = self._new_store()
            self.registry = resources.Registry.with_builtins()
            self.schemas = schemas.Schemas()
            self.objects = objects.ObjectApi(self.store, self.clock, self.service_ips)
        self._used = True
        serving = crds.CrdServing(self.registry, self.schemas)
        self.store.add_hook(serving.hook)
        await self.store.open()
        await self.security.prepare(
            self._pki.admin_token, self.store, self.objects, self.registry, self._pki.ca_cert_pem
        )
        self.ctx = context.ApiContext(
            store=self.store,
            registry=self.registry,
            objects=self.objects,
            schemas=self.schemas,
            clock=self.clock,
            settings=self.settings,
            authenticator=self.authenticator or self.security.authenticator,
            authorizer=self.authorizer or self.security.authorizer,
            admission=self.admission or self.security.admission,
            kubelet_tls=await asyncio.to_thread(pki.kubelet_client_ssl_context, self._pki),
        )
        podstreams.register(self.registry)
        eviction.register(self.registry, self.ctx)
        oapi = openapi.OpenApi(self.registry, self.schemas, self.settings.git_version)
        cert, key = await asyncio.to_thread(pki.serving_cert, self._pki, [self.host])
        ssl_ctx = await asyncio.to_thread(pki.server_ssl_context, cert, key, self._pki.ca_cert_pem)
        dispatcher = dispatch.Dispatcher(self.ctx, oapi, f"{self.host}:{self.port}")
        srv = server.HttpsServer(dispatcher, self.host, self.port, ssl_ctx)
        try:
            self.port = await srv.start()
        except BaseException:
            await self.store.close()
            raise
        dispatcher.server_address = f"{self.host}:{self.port}"
        self._server = srv
        await bootstrap.ensure(self.objects, self.registry, self.host, self.port)
        await self.security.bootstrap(self.objects, self.registry)
        self._tasks = tasks.TaskGroup(f"devcluster/{self.name}")
        self._tasks.start(crds.cleanup_loop(self.store, self.objects, self.registry), "crd-cleanup")
        collector = gc.Collector(lambda: self.store, lambda: self.objects, lambda: self.registry)
        self._tasks.start(collector.run(), "garbage-collector")
        self._tasks.start(self.security.controllers(), "serviceaccounts")
        budgets = disruption.DisruptionController(lambda: self.store, eviction.matches, self.clock.wall)
        self._tasks.start(budgets.run(), "disruption")
        for cname, factory in self._controllers:
            self._tasks.start(factory(), cname)
        log.info("dev cluster ready cluster=%s url=%s data_dir=%s", self.name, self.url, self.data_dir)

    async def stop(self) -> None:
        if self._tasks is not None:
            await self._tasks.stop()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self.store.close()
        log.info("dev cluster stopped cluster=%s", self.name)

    async def __aenter__(self) -> DevCluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
