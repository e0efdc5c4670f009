"""`meshplane discovery`, the composition root: wires the clusters, registries, push queue,
generators, ADS + CA gRPC server, debug/metrics HTTP, and the per-cluster controllers, then runs
them and stops them in reverse order.

    watch (kube) -> registries (registry) -> push queue (push) -> generators (xds) -> ADS (server)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import lightkube
from aiohttp import web

from meshplane.console import routes as console_routes
from meshplane.console import scrape as console_scrape
from meshplane.console import views as console_views
from meshplane.discovery import config as config_mod
from meshplane.discovery import managed
from meshplane.discovery import options as options_mod
from meshplane.discovery import webhook as webhook_mod
from meshplane.kube import client as kube_client
from meshplane.kube import informer as inf
from meshplane.model import ids, mesh, proxy
from meshplane.networking import config as net_config
from meshplane.policy import config as policy_config
from meshplane.push import context, debounce, propagation, queue
from meshplane.push import metrics as push_metrics
from meshplane.registry import aggregate, cluster, multicluster
from meshplane.registry import metrics as registry_metrics
from meshplane.runtime import clock as clock_mod
from meshplane.runtime import ipaddr, tasks
from meshplane.runtime.logging import kv
from meshplane.security import ca as ca_mod
from meshplane.security import carotation, plane, tokenreview, webhookpatch
from meshplane.server import ads, debug, grpcserver
from meshplane.xds import generator

log = logging.getLogger(__name__)


def _is_tls(ctx: grpc.aio.ServicerContext[Any, Any]) -> bool:
    auth = ctx.auth_context() or {}
    return any(v in (b"ssl", b"tls") for v in auth.get("transport_security_type", []))


def tls_only(hook: ads.XdsAuth) -> ads.XdsAuth:
    """XDS_AUTH for the TLS port; the plaintext debug port (15010) is unauthenticated as in Istio."""

    async def check(ctx: grpc.aio.ServicerContext[Any, Any], p: proxy.Proxy) -> None:
        if _is_tls(ctx):
            await hook(ctx, p)

    return check


@dataclass
class Ports:
    xds_plaintext: int | None = None
    secure_grpc: int | None = None
    monitoring: int = 0
    webhook: int | None = None


class Discovery:
    def __init__(
        self,
        opts: options_mod.Options,
        *,
        clock: clock_mod.Clock | None = None,
        local_client: lightkube.AsyncClient | None = None,
    ) -> None:
        self.opts = opts
        self.clock = clock or clock_mod.SystemClock()
        self._local_client = local_client
        self.ports = Ports()
        self._group = tasks.TaskGroup("discovery")
        self._stops: list[Callable[[], Awaitable[None]]] = []
        self.metrics = push_metrics.Metrics()
        self.registry_metrics = registry_metrics.RegistryMetrics(self.metrics.registry)
        self.cluster_id = ids.ClusterId(opts.cluster_id)
        base = mesh.MeshConfig(
            trust_domain=opts.trust_domain, mesh_id=opts.mesh_id, root_namespace=opts.namespace
        )
        self.aggregate = aggregate.Aggregate(base, self._registry_changed)
        self.networking = net_config.NetworkingConfig()
        self.policy = policy_config.PolicyConfig()
        self.queue: queue.PushQueue | None = None
        self.multicluster: multicluster.Multicluster | None = None
        self.config: config_mod.ConfigWatcher | None = None
        self.security: plane.SecurityPlane | None = None
        self.managed: managed.ManagedClusters | None = None
        self.ads: ads.AdsServer | None = None
        self.grpc: grpcserver.GrpcServer | None = None
        self.debug: debug.DebugServer | None = None
        self.console: console_routes.Console | None = None
        self.webhook: webhook_mod.WebhookServer | None = None
        self.validation: webhookpatch.ValidationPatcher | None = None
        self._webhook_tls: ssl.SSLContext | None = None
        self.ca_rotator: carotation.CaRotator | None = None
        # the change being reported while a cluster registry's on_change runs (propagation SLI)
        self._origin: propagation.Origin | None = None
        # set once the config cluster has synced and the first full push was requested
        self.first_push_done = asyncio.Event()

    # --- ConfigSource ----------------------------------------------------------------------------

    def snapshot(self, version: str) -> context.PushContext:
        services, shards = self.networking.with_entries(self.aggregate.services(), self.aggregate.shards())
        return context.PushContext(
            version=version,
            mesh=self.aggregate.mesh,
            services=services,
            endpoints=shards,
            networking=self.networking,
            policy=self.policy,
        )

    def _registry_changed(self, full: bool, hosts: frozenset[ids.Hostname], reason: str) -> None:
        if self.queue is not None:
            self.queue.enqueue(
                context.PushRequest(
                    full=full,
                    eds_hosts=hosts,
                    reasons=frozenset({reason}),
                    start=self.clock.monotonic(),
                    origins=(self._origin,) if self._origin is not None else (),
                )
            )

    def _networking_changed(self, cfg: net_config.NetworkingConfig) -> None:
        self.networking = cfg
        self._origin = propagation.Origin(self.opts.cluster_id, self.clock.monotonic())
        try:
            self._registry_changed(True, frozenset(), "ConfigUpdate")
        finally:
            self._origin = None

    def _cluster_changed(self, registry: cluster.ClusterRegistry, change: cluster.Change) -> None:
        """A cluster's informer delivered a change: note where and when (the propagation SLI's start)."""
        event = registry.event
        written = None
        if event is not None and event.type != inf.EventType.DELETED:  # a delete has no write time
            written = propagation.written_at(event.obj)
        self._origin = propagation.Origin(registry.cluster_id, self.clock.monotonic(), written)
        try:
            self.aggregate.on_change(registry, change)
        finally:
            self._origin = None

    def _policy_changed(self, cfg: policy_config.PolicyConfig) -> None:
        self.policy = cfg
        self._origin = propagation.Origin(self.opts.cluster_id, self.clock.monotonic())
        try:
            self._registry_changed(True, frozenset(), "ConfigUpdate")
        finally:
            self._origin = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def _client_for_local(self) -> lightkube.AsyncClient:
        if self._local_client is not None:
            return self._local_client
        cfg = await asyncio.to_thread(kube_client.load_config, self.opts.kubeconfig, self.opts.context)
        return await asyncio.to_thread(kube_client.make_client, cfg)

    def _registry_for(self, cid: ids.ClusterId, client: lightkube.AsyncClient) -> cluster.ClusterRegistry:
        return cluster.ClusterRegistry(
            cid,
            client,
            on_change=self._cluster_changed,
            network=self.opts.network,
            system_namespace=self.opts.namespace,
            resync_period=self.opts.resync_period,
            clock=self.clock,
            metrics=self.registry_metrics,
        )

    async def start(self) -> None:
        o = self.opts
        log.info(
            "starting discovery %s",
            kv(cluster=o.cluster_id, namespace=o.namespace, network=o.network or None),
        )
        local = await self._client_for_local()
        self._stops.append(local.close)

        self.security = await plane.build(
            local,
            self.cluster_id,
            o.namespace,
            tokenreview.ClientReviewers(self._client_for, self._remote_ids),
            self.metrics.registry,
            trust_domain=o.trust_domain,
            default_ttl=_td(o.workload_cert_ttl),
            max_ttl=_td(o.max_workload_cert_ttl),
            root_ttl=_td(o.self_signed_ca_cert_ttl),
        )
        self.managed = managed.ManagedClusters(
            cluster_id=o.cluster_id,
            namespace=o.namespace,
            revision=o.revision,
            identity=o.pod_name,
            ca_bundle=self.security.ca.root_pem,
            external_istiod=o.external_istiod,
            leader_election=o.enable_leader_election,
        )
        self._stops.append(self.managed.stop)

        self.ads = ads.AdsServer(
            generator.Generator(),
            metrics=self.metrics,
            cluster_id=self.cluster_id,
            clock=self.clock,
            auth=tls_only(self.security.xds_auth.hook),
        )
        self.queue = queue.PushQueue(
            self,
            self.ads,
            metrics=self.metrics,
            clock=self.clock,
            debounce_options=debounce.DebounceOptions(after=o.debounce_after, max=o.debounce_max),
        )
        self.debug = debug.DebugServer(self.ads, self.metrics)
        self.debug.add_json("/debug/registryz", self.aggregate.registryz)
        self.debug.add_json("/debug/clusterz", self._clusterz)
        self.debug.add_handler("/ready", self._ready)
        self.console = self._console(self.ads)
        self.console.mount(self.debug)
        self.ports.monitoring = await self.debug.start(o.bind_address, o.monitoring_port)
        self._stops.append(self.debug.stop)

        self.multicluster = multicluster.Multicluster(
            local_id=self.cluster_id,
            local_client=local,
            local_registry=self._registry_for(self.cluster_id, local),
            namespace=o.namespace,
            aggregate=self.aggregate,
            client_factory=lambda value, source: kube_client.client_from_untrusted(
                value, source, o.insecure_kubeconfig_options
            ),
            registry_factory=self._registry_for,
            metrics=self.registry_metrics,
            sync_timeout=o.remote_cluster_timeout,
            resync_period=o.resync_period,
            clock=self.clock,
            handlers=[self.managed],
        )
        self.config = config_mod.ConfigWatcher(
            local,
            cluster_id=o.cluster_id,
            namespace=o.namespace,
            base_mesh=self.aggregate.mesh,
            on_mesh=self.aggregate.set_mesh,
            on_networking=self._networking_changed,
            on_policy=self._policy_changed,
            resync_period=o.resync_period,
            clock=self.clock,
        )
        self.config.start()
        self._stops.append(self.config.stop)
        await self.multicluster.start()
        self._stops.append(self.multicluster.stop)

        await self.queue.start()
        self._stops.append(self.queue.stop)

        listeners: list[grpcserver.Listener] = []
        if o.xds_plaintext_port is not None:
            listeners.append(grpcserver.Listener(f"{o.bind_address}:{o.xds_plaintext_port}"))
        if o.secure_grpc_port is not None:
            creds = await asyncio.to_thread(self.security.serving_credentials, *self._serving_names())
            listeners.append(grpcserver.Listener(f"{o.bind_address}:{o.secure_grpc_port}", creds))
        self.grpc = grpcserver.GrpcServer(self.ads, listeners)
        cert_handler = self.security.cert_service.handler()
        self.grpc.add_service(lambda s: s.add_generic_rpc_handlers((cert_handler,)))
        bound = await self.grpc.start()
        self._stops.append(self.grpc.stop)
        it = iter(bound)
        if o.xds_plaintext_port is not None:
            self.ports.xds_plaintext = next(it)
        if o.secure_grpc_port is not None:
            self.ports.secure_grpc = next(it)
        if o.webhook_port is not None:
            await self._start_webhook(local)
        transition = o.root_cert_transition
        self.ca_rotator = self.security.rotator(
            local, o.cluster_id, o.max_workload_cert_ttl if transition is None else transition, self.clock
        )
        self.ca_rotator.subscribe(self.managed.set_ca_bundle)
        if self.validation is not None:
            self.ca_rotator.subscribe(self._validation_bundle)
        self.ca_rotator.subscribe(self._reissue_serving_certs)
        self._group.start(self.ca_rotator.run(), "ca-rotation")
        renewer = self.security.renewer(
            o.cluster_id, o.root_cert_check_interval, o.root_cert_grace_percent, o.root_cert_jitter
        )
        self._group.start(renewer.run(), "root-renewal")
        self._group.start(self._first_push(), "first-push")
        self._group.start(self.console.collector.run(), "console-scrape")
        log.info(
            "discovery serving %s",
            kv(
                cluster=o.cluster_id,
                xds=self.ports.xds_plaintext,
                secure=self.ports.secure_grpc,
                monitoring=self.ports.monitoring,
            ),
        )

    def _serving_names(self) -> tuple[list[str], list[str]]:
        o = self.opts
        dns = ca_mod.serving_dns_names(o.namespace, o.revision, o.custom_hosts)
        extra = [n for n in o.extra_san if not ipaddr.is_ip(n)]
        return [*dns, *extra], [n for n in o.extra_san if ipaddr.is_ip(n)]

    async def _start_webhook(self, local: lightkube.AsyncClient) -> None:
        assert self.security is not None and self.multicluster is not None
        o = self.opts
        self.webhook = webhook_mod.WebhookServer(
            local,
            cluster_id=o.cluster_id,
            namespace=o.namespace,
            defaults=webhook_mod.default_settings(
                o.cluster_id, o.network, o.mesh_id, o.trust_domain, o.namespace, o.revision
            ),
        )
        dns, ips = self._serving_names()
        chain, key = await asyncio.to_thread(self.security.serving_cert, dns, ips)
        tls = await asyncio.to_thread(webhook_mod.ssl_context, chain, key)
        self._webhook_tls = tls
        assert o.webhook_port is not None
        self.ports.webhook = await self.webhook.start(o.bind_address, o.webhook_port, tls)
        self._stops.append(self.webhook.stop)
        # Istio's validation webhook controller runs on the config cluster only (SPEC: none for remotes)
        self.validation = webhookpatch.ValidationPatcher(
            local, self.cluster_id, o.revision, self.security.ca.root_pem, o.namespace, clock=self.clock
        )
        self._group.start(self.validation.run(), "validation-webhook")

    async def _validation_bundle(self, bundle: str) -> None:
        if self.validation is not None:
            self.validation.set_ca_bundle(bundle)

    async def _reissue_serving_certs(self, _bundle: str) -> None:
        """After a CA swap: 15012 and 15017 present certificates from the new CA (Istio's
        updateRootCertAndGenKeyCert regenerates istiod's own cert the same way)."""
        assert self.security is not None
        await asyncio.to_thread(self.security.reissue_serving)
        if self._webhook_tls is not None:
            chain, key = await asyncio.to_thread(self.security.serving_cert, *self._serving_names())
            await asyncio.to_thread(webhook_mod.load_cert, self._webhook_tls, chain, key)
        log.info("serving certificates reissued by the new CA %s", kv(cluster=self.opts.cluster_id))

    async def _first_push(self) -> None:
        assert self.multicluster is not None and self.queue is not None
        await self.multicluster.local_registry.wait_synced()
        self._registry_changed(True, frozenset(), "Startup")
        self.first_push_done.set()

    async def stop(self) -> None:
        await self._group.stop()
        while self._stops:
            fn = self._stops.pop()
            try:
                await fn()
            except Exception:
                log.exception("stop step failed %s", kv(cluster=self.opts.cluster_id))

    # --- helpers ---------------------------------------------------------------------------------

    def _client_for(self, cid: str) -> lightkube.AsyncClient | None:
        return self.multicluster.client_for(cid) if self.multicluster else None

    def _remote_ids(self) -> list[ids.ClusterId]:
        return self.multicluster.remote_ids() if self.multicluster else []

    def ready(self) -> bool:
        return bool(
            self.multicluster is not None
            and self.multicluster.ready()
            and self.config is not None
            and self.config.synced
            and self.queue is not None
            and self.queue.pushes > 0
        )

    async def _ready(self, _: web.Request) -> web.Response:
        if self.ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    def _console(self, ads_server: ads.AdsServer) -> console_routes.Console:
        state = console_views.State(
            connections=lambda: ads_server.connections,
            push_context=lambda: ads_server.current,
            propagation=ads_server.propagation.summary,
            multicluster=lambda: self.multicluster,
            config=self._config_objects,
        )
        targets = lambda: [(c.proxy.id, c.proxy.ip) for c in ads_server.connections]  # noqa: E731
        return console_routes.Console(state, console_scrape.Collector(targets, clock=self.clock))

    def _config_objects(self) -> list[console_views.ConfigObject]:
        """Every Istio object the config watch read, with its validation message when rejected."""
        if self.config is None:
            return []
        out = []
        for informer in self.config.informers:
            if informer.kind == "ConfigMap":
                continue
            for obj in informer.items():
                meta = inf.as_dict(obj).get("metadata") or {}
                ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
                ref = f"{informer.kind} {ns}/{name}: "
                message = next((p for p in self.config.problems if p.startswith(ref)), "")
                out.append(console_views.ConfigObject(informer.kind, ns, name, message))
        return out

    def _clusterz(self) -> list[dict[str, str]]:
        return self.multicluster.clusterz() if self.multicluster else []


def _td(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)
