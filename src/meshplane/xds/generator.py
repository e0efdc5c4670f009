"""The entry point the ADS server calls: `Generator.generate(type_url, proxy, ctx, names)`.

It picks the generator for the proxy's type (sidecar or router) and goes through the cache, so a
resource is built and serialized once per (push version, name, proxy view) and the same `Resource`
objects are shared by every proxy with that view. For CDS and LDS (wildcard types) `names` is None
and the proxy's whole set is returned; for EDS and RDS only the requested names that exist.
Pure and thread-safe: the server may call it from worker threads.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable

from google.protobuf import message

from meshplane.model import endpoint, mesh, service
from meshplane.model import proxy as proxy_model
from meshplane.model.ids import Hostname
from meshplane.networking import destinationrule
from meshplane.policy import config as policy_config
from meshplane.policy import peerauthn
from meshplane.xds import (
    cache,
    cds,
    eds,
    errors,
    gateways,
    inbound,
    lds,
    locality,
    naming,
    nds,
    proxyview,
    rds,
    resources,
    sidecarscope,
    snapshot,
    tcproute,
    transparent,
)

log = logging.getLogger(__name__)

Names = frozenset[str] | None


def _combine(type_url: str, parts: Iterable[resources.Generated]) -> resources.Generated:
    items = list(parts)
    if len(items) == 1:
        return items[0]
    digest = hashlib.blake2b(digest_size=8)
    merged: tuple[resources.Resource, ...] = ()
    for g in items:
        digest.update(g.version.encode())
        merged += g.resources
    return resources.Generated(type_url, merged, digest.hexdigest())


def _only(g: resources.Generated, names: Names) -> resources.Generated:
    if names is None:
        return g
    return resources.generated(g.type_url, (r for r in g.resources if r.name in names))


def _builder(name: str, make: Callable[[], message.Message]) -> Callable[[], tuple[str, message.Message]]:
    return lambda: (name, make())


class Generator:
    def __init__(self, resource_cache: cache.ResourceCache | None = None) -> None:
        self.cache = resource_cache or cache.ResourceCache()

    def generate(
        self, type_url: str, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot, names: Names
    ) -> resources.Generated:
        if proxy.type is not proxy_model.ProxyType.ROUTER and not isinstance(ctx, sidecarscope.Scoped):
            sc = ctx.networking.sidecar_for(proxy.namespace, proxy.labels)
            if sc is not None:  # a Sidecar scopes this proxy: generate over its view, keyed by it
                key = sidecarscope.scope_key(sc)
                scoped = self.cache.derived(
                    ctx.version, ("sidecar-scope", key), lambda: sidecarscope.scoped(ctx, sc)
                )
                return Generator(sidecarscope.KeyedCache(self.cache, key)).generate(
                    type_url, proxy, scoped, names
                )
        if type_url == resources.TYPE_CDS:
            return _only(self._clusters(proxy, ctx), names)
        if type_url == resources.TYPE_EDS:
            return self._endpoints(proxy, ctx, names)
        if type_url == resources.TYPE_LDS:
            return _only(self._listeners(proxy, ctx), names)
        if type_url == resources.TYPE_RDS:
            return self._routes(proxy, ctx, names)
        if type_url == resources.TYPE_NDS:
            return _only(self._name_table(proxy, ctx), names)
        raise errors.UnsupportedTypeError(f"no generator for type {type_url!r} (proxy={proxy.id})")

    def inbound_signature(self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot) -> tuple[object, ...]:
        """What a sidecar's own side (inbound clusters and listeners) is built from.

        On an EDS-only push the server compares it with the previous version's for each sidecar:
        when it changed (the proxy's IP joined or left a service), that proxy needs CDS and LDS
        too, because its inbound config follows its endpoints. Cheap: one index per push."""
        if proxy.type is proxy_model.ProxyType.ROUTER:
            return ()
        return self._own_ports(proxyview.inbound_view(proxy), sidecarscope.unscoped(ctx))

    # ---- NDS

    def _name_table(self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot) -> resources.Generated:
        """One NameTable per (cluster, network): what it holds depends on nothing else of the proxy."""
        key = ("nds", proxy.cluster_id, proxy.network)
        return self.cache.derived(
            ctx.version,
            key,
            lambda: resources.generated(
                resources.TYPE_NDS,
                (resources.pack(nds.RESOURCE_NAME, nds.build(proxy, ctx.services, ctx.endpoints)),),
            ),
        )

    # ---- CDS

    def _clusters(self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot) -> resources.Generated:
        sds = proxyview.has_sds(proxy)
        v = ctx.version
        ns = proxy.namespace  # DestinationRules apply per proxy namespace
        outbound = self.cache.derived(
            v, ("cds-outbound", sds, ns), lambda: self._outbound_clusters(ctx, sds, ns)
        )
        if proxy.type is proxy_model.ProxyType.ROUTER:
            lk = proxyview.labels_key(proxy.labels)
            extra = self.cache.derived(v, ("cds-router", lk), lambda: self._sni_dnat_clusters(proxy, ctx))
        else:
            iv = proxyview.inbound_view(proxy)
            extra = self.cache.derived(v, ("cds-inbound", iv), lambda: self._inbound_clusters(iv, ctx))
            if iv.interception is proxyview.Interception.REDIRECT:
                fixed = self.cache.derived(v, ("cds-capture",), lambda: self._capture_clusters(v))
                return _combine(resources.TYPE_CDS, (outbound, extra, fixed))
        return _combine(resources.TYPE_CDS, (outbound, extra))

    def _capture_clusters(self, version: str) -> resources.Generated:
        """PassthroughCluster, BlackHoleCluster and InboundPassthroughCluster of a captured sidecar."""
        return resources.generated(
            resources.TYPE_CDS,
            (
                self.cache.resource(version, ("cds-fixed", name), (), _builder(name, make))
                for name, make in (
                    (naming.PASSTHROUGH_CLUSTER, cds.passthrough),
                    (naming.BLACKHOLE_CLUSTER, cds.blackhole),
                    (naming.INBOUND_PASSTHROUGH_CLUSTER, cds.inbound_passthrough),
                )
            ),
        )

    def _outbound_clusters(self, ctx: snapshot.Snapshot, sds: bool, namespace: str) -> resources.Generated:
        out = []
        seen: set[str] = set()
        td = cds.trust_domain(ctx.mesh)
        for host in sorted(ctx.services):
            svc = ctx.services[host]
            # the cluster depends on the endpoints only through their identities (SANs)
            sans = cds.identities(svc, ctx.endpoints.get(host), td) if sds else ()
            rule = ctx.networking.destination_rule(host, namespace)
            subsets = ("", *(s.name for s in rule.subsets)) if rule else ("",)
            for port in cds.cluster_ports(svc):
                for subset in subsets:
                    name = naming.outbound_cluster(host, port.port, subset)
                    if name in seen:  # two ports with one number (TCP and UDP): one cluster
                        continue
                    seen.add(name)
                    policy = rule.policy(port.port, subset) if rule else None
                    # a STRICT_DNS cluster (ServiceEntry resolution DNS) holds its endpoints itself
                    dns = ctx.endpoints.get(host) if svc.resolution is service.Resolution.DNS_LB else None
                    found = rule.subset(subset) if rule and subset else None
                    labels = tuple(sorted(found.labels.items())) if found else ()

                    def make(
                        svc: service.Service = svc,
                        port: service.ServicePort = port,
                        sans: tuple[str, ...] = sans,
                        policy: destinationrule.Policy | None = policy,
                        subset: str = subset,
                        dns: snapshot.Shards | None = dns,
                        labels: tuple[tuple[str, str], ...] = labels,
                    ) -> message.Message:
                        return cds.outbound(svc, port, sans, sds, policy, subset, dns, dict(labels))

                    out.append(
                        self.cache.resource(
                            ctx.version,
                            ("cds", name, sds, policy, labels),
                            (svc, sans, dns),
                            _builder(name, make),
                        )
                    )
        return resources.generated(resources.TYPE_CDS, out)

    def _inbound_clusters(self, iv: proxyview.InboundView, ctx: snapshot.Snapshot) -> resources.Generated:
        out = []
        for p in self._own_ports(iv, ctx):
            name = naming.inbound_cluster(p.port)

            def make(p: inbound.InboundPort = p) -> message.Message:
                return cds.inbound(p.port, iv.localhost, p.protocol)

            out.append(
                self.cache.resource(
                    ctx.version, ("cds-in", name, iv.localhost, p.protocol), (), _builder(name, make)
                )
            )
        return resources.generated(resources.TYPE_CDS, out)

    def _sni_dnat_clusters(self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot) -> resources.Generated:
        out = []
        for svc, port in gateways.sni_dnat_targets(proxy, ctx.networking, ctx.services):
            name = naming.sni_name(svc.hostname, port.port)

            def make(svc: service.Service = svc, port: service.ServicePort = port) -> message.Message:
                return cds.sni_dnat(svc, port)

            out.append(self.cache.resource(ctx.version, ("cds-sni", name), (svc,), _builder(name, make)))
        return resources.generated(resources.TYPE_CDS, out)

    def _own_ports(
        self, iv: proxyview.InboundView, ctx: snapshot.Snapshot
    ) -> tuple[inbound.InboundPort, ...]:
        full = sidecarscope.unscoped(ctx)  # a Sidecar's egress hosts do not scope the inbound side
        index = self.cache.derived(ctx.version, ("inbound-index",), lambda: inbound.build_index(full))
        return inbound.own_ports(iv, full.services, index)

    def _peer_mtls(self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot) -> peerauthn.Effective:
        """The sidecar's effective PeerAuthentication (per workload labels; cached per push)."""
        key = ("peer-mtls", proxy.namespace, proxyview.labels_key(proxy.labels))
        return self.cache.derived(
            ctx.version,
            key,
            lambda: ctx.policy.mtls(
                ctx.mesh.root_namespace, proxy.namespace, proxy.labels, ctx.mesh.mtls_mode
            ),
        )

    # ---- EDS

    def _eds_names(self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot) -> list[str]:
        names = []
        for h in sorted(ctx.services):
            if ctx.services[h].resolution is not service.Resolution.CLIENT_SIDE_LB:
                continue  # STRICT_DNS and ORIGINAL_DST clusters have no EDS
            rule = ctx.networking.destination_rule(h, proxy.namespace)
            subsets = ("", *(s.name for s in rule.subsets)) if rule else ("",)
            names += [
                naming.outbound_cluster(h, p.port, sub)
                for p in cds.cluster_ports(ctx.services[h])
                for sub in subsets
            ]
        if proxy.type is proxy_model.ProxyType.ROUTER:
            names += [
                naming.sni_name(s.hostname, p.port)
                for s, p in gateways.sni_dnat_targets(proxy, ctx.networking, ctx.services)
            ]
        return list(dict.fromkeys(names))

    def _endpoints(
        self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot, names: Names
    ) -> resources.Generated:
        networks = tuple(sorted(set(proxy.requested_network_view)))
        key = (
            "eds-set",
            proxy.cluster_id,
            networks,
            names,
            proxy.type if names is None else None,
            proxy.namespace if ctx.networking.destination_rules else None,
            # locality LB needs outlierDetection (a DestinationRule): EDS then depends on these
            self._proxy_locality(proxy, ctx) if ctx.networking.destination_rules else None,
            proxyview.labels_key(proxy.labels) if ctx.networking.destination_rules else None,
        )
        return self.cache.derived(
            ctx.version, key, lambda: self._build_endpoints(proxy, ctx, names, networks)
        )

    def _proxy_locality(self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot) -> endpoint.Locality:
        """The proxy's own endpoint's locality, else its node's (locality.by_address)."""
        index = self.cache.derived(
            ctx.version, ("locality-by-address",), lambda: locality.by_address(ctx.endpoints)
        )
        return index.get((proxy.cluster_id, proxy.ip), proxy.locality)

    def _build_endpoints(
        self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot, names: Names, networks: tuple[str, ...]
    ) -> resources.Generated:
        out = []

        def plaintext(ep: endpoint.Endpoint, target: int) -> bool:
            """Auto mTLS follows the server: its effective PeerAuthentication DISABLE on the target
            port drops the endpoint's tlsMode (pilot/pkg/xds/endpoints/mtls_checker.go)."""
            if not ctx.policy.peer_authentications and ctx.mesh.mtls_mode is not mesh.MtlsMode.DISABLE:
                return False
            eff = ctx.policy.mtls(ctx.mesh.root_namespace, ep.namespace, ep.labels, ctx.mesh.mtls_mode)
            return eff.for_port(target) is mesh.MtlsMode.DISABLE

        @functools.cache
        def proxy_loc() -> endpoint.Locality:
            return self._proxy_locality(proxy, ctx)

        @functools.cache
        def proxy_labels() -> dict[str, str]:
            return locality.augmented(proxy.labels, proxy_loc(), proxy.cluster_id, proxy.network)

        for name in sorted(names) if names is not None else self._eds_names(proxy, ctx):
            try:
                parsed = naming.parse_cluster(name)
            except errors.ResourceNameError as e:
                log.debug("EDS request for a name that is no cluster of ours: %s proxy=%s", e, proxy.id)
                continue
            svc = ctx.services.get(parsed.host)
            port = svc.port(parsed.port) if svc is not None else None
            if svc is None or port is None or parsed.direction is not naming.Direction.OUTBOUND:
                continue
            if svc.resolution is not service.Resolution.CLIENT_SIDE_LB:
                continue
            labels: tuple[tuple[str, str], ...] = ()
            rule = ctx.networking.destination_rule(parsed.host, proxy.namespace)
            if parsed.subset:
                subset = rule.subset(parsed.subset) if rule else None
                if subset is None:
                    continue
                labels = tuple(sorted(subset.labels.items()))
            lb = (
                locality.for_cluster(rule.policy(port.port, parsed.subset), proxy_loc(), proxy_labels())
                if rule is not None
                else None
            )
            view = eds.view(svc, ctx.mesh, proxy.cluster_id, networks)
            shards = ctx.endpoints.get(Hostname(parsed.host))

            def make(
                name: str = name,
                shards: snapshot.Shards | None = shards,
                port: service.ServicePort = port,
                view: eds.View = view,
                labels: tuple[tuple[str, str], ...] = labels,
                lb: locality.Setting | None = lb,
            ) -> message.Message:
                return eds.load_assignment(name, shards, port, view, dict(labels), plaintext, lb)

            peer = (ctx.policy.peer_authentications, ctx.mesh.mtls_mode, ctx.mesh.root_namespace)
            out.append(
                self.cache.resource(
                    ctx.version, ("eds", name, view, labels, lb), (svc, shards, peer), _builder(name, make)
                )
            )
        return resources.generated(resources.TYPE_EDS, out)

    # ---- LDS

    def _listeners(self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot) -> resources.Generated:
        v = ctx.version
        if proxy.type is proxy_model.ProxyType.ROUTER:
            key = ("lds-router", proxyview.labels_key(proxy.labels), proxy.ip)
            return self.cache.derived(
                v,
                key,
                lambda: resources.generated(
                    resources.TYPE_LDS,
                    (
                        resources.pack(x.name, x)
                        for x in gateways.listeners(proxy, ctx.networking, ctx.services)
                    ),
                ),
            )
        iv = proxyview.inbound_view(proxy)
        peer = self._peer_mtls(proxy, ctx)
        authz = ctx.policy.workload(ctx.mesh.root_namespace, proxy.namespace, proxy.labels)
        ns = proxy.namespace  # VirtualService tcp routes are per proxy namespace (exportTo)
        return self.cache.derived(
            v,
            ("lds-sidecar", iv, peer, authz, ns),
            lambda: self._sidecar_listeners(iv, ctx, peer, authz, ns),
        )

    def _sidecar_listeners(
        self,
        iv: proxyview.InboundView,
        ctx: snapshot.Snapshot,
        peer: peerauthn.Effective,
        authz: policy_config.WorkloadPolicy,
        namespace: str = "",
    ) -> resources.Generated:
        if iv.interception is proxyview.Interception.REDIRECT:
            return self._captured_listeners(iv, ctx, peer, authz, namespace)
        return self._explicit_listeners(iv, ctx, peer, authz)

    def _captured_listeners(
        self,
        iv: proxyview.InboundView,
        ctx: snapshot.Snapshot,
        peer: peerauthn.Effective,
        authz: policy_config.WorkloadPolicy,
        namespace: str = "",
    ) -> resources.Generated:
        v = ctx.version
        policy = ctx.mesh.outbound_traffic_policy
        outbound = self.cache.derived(
            v,
            ("lds-capture-out", iv.cluster_id, policy, namespace),
            lambda: self._captured_outbound(iv, ctx, namespace),
        )
        ports = self._own_ports(iv, ctx)
        name = naming.VIRTUAL_INBOUND
        vin = self.cache.resource(
            v,
            ("lds-vin", ports, peer, iv.sds, authz),
            (),
            _builder(name, lambda: transparent.virtual_inbound(ports, peer, iv.sds, authz)),
        )
        return _combine(resources.TYPE_LDS, (outbound, resources.generated(resources.TYPE_LDS, [vin])))

    def _captured_outbound(
        self, iv: proxyview.InboundView, ctx: snapshot.Snapshot, namespace: str = ""
    ) -> resources.Generated:
        v = ctx.version
        policy = ctx.mesh.outbound_traffic_policy
        http_ports, vips = transparent.outbound_ports(ctx.services, iv.cluster_id)
        out = [
            self.cache.resource(
                v,
                ("lds-vout", policy),
                (),
                _builder(naming.VIRTUAL_OUTBOUND, lambda: transparent.virtual_outbound(policy)),
            )
        ]
        for port in http_ports:
            name = naming.listener(transparent.ANY, port)

            def make_http(port: int = port) -> message.Message:
                return transparent.http_port(port, policy)

            out.append(self.cache.resource(v, ("lds-http-port", port, policy), (), _builder(name, make_http)))
        for vip, host, sp in vips:
            name = naming.listener(vip, sp.port)
            routed = tcproute.clusters(host, sp.port, namespace, ctx.services, ctx.networking)

            def make_vip(
                vip: str = vip,
                host: Hostname = host,
                sp: service.ServicePort = sp,
                routed: tcproute.Clusters = routed,
            ) -> message.Message:
                return transparent.vip_port(vip, host, sp, routed)

            key = ("lds-vip", vip, host, sp, routed)
            out.append(self.cache.resource(v, key, (), _builder(name, make_vip)))
        return resources.generated(resources.TYPE_LDS, out)

    def _explicit_listeners(
        self,
        iv: proxyview.InboundView,
        ctx: snapshot.Snapshot,
        peer: peerauthn.Effective,
        authz: policy_config.WorkloadPolicy,
    ) -> resources.Generated:
        v = ctx.version
        out_name = naming.listener(iv.localhost, naming.OUTBOUND_LISTENER_PORT)
        out = [
            self.cache.resource(
                v, ("lds-out", out_name), (), _builder(out_name, lambda: lds.outbound(iv.localhost))
            )
        ]
        for p in self._own_ports(iv, ctx):
            mode = peer.for_port(p.port)
            if mode is mesh.MtlsMode.STRICT and not iv.sds:
                log.warning("STRICT mTLS but the proxy has no SDS: no inbound listener port=%d", p.port)
                continue
            name = naming.listener(p.address, p.port)

            def make(p: inbound.InboundPort = p, mode: mesh.MtlsMode = mode) -> message.Message:
                listener = lds.inbound_listener(p, mode, iv.sds, authz)
                assert listener is not None  # STRICT without SDS is skipped above
                return listener

            out.append(
                self.cache.resource(v, ("lds-in", name, p, mode, iv.sds, authz), (), _builder(name, make))
            )
        return resources.generated(resources.TYPE_LDS, out)

    # ---- RDS

    def _routes(self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot, names: Names) -> resources.Generated:
        v = ctx.version
        if proxy.type is proxy_model.ProxyType.ROUTER:
            key: tuple[object, ...] = ("rds-router", proxyview.labels_key(proxy.labels), names)
            return self.cache.derived(v, key, lambda: self._router_routes(proxy, ctx, names))
        mode = proxyview.interception(proxy)
        # a VirtualService match on sourceLabels makes routes depend on the proxy's labels
        lk = proxyview.labels_key(proxy.labels) if ctx.networking.uses_source_labels() else None
        key = ("rds-sidecar", proxy.namespace, proxy.cluster_id, mode, names, lk)
        if mode is proxyview.Interception.REDIRECT:
            return self.cache.derived(v, key, lambda: self._port_tables(proxy, ctx, names))
        return self.cache.derived(v, key, lambda: self._sidecar_routes(proxy, ctx, names))

    def _port_tables(
        self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot, names: Names
    ) -> resources.Generated:
        """Route configurations `PORT` of a captured sidecar's `0.0.0.0_PORT` listeners."""
        policy = ctx.mesh.outbound_traffic_policy
        http_ports, _ = self.cache.derived(
            ctx.version,
            ("outbound-ports", proxy.cluster_id),
            lambda: transparent.outbound_ports(ctx.services, proxy.cluster_id),
        )
        out = []
        for port in http_ports:
            name = str(port)
            if names is not None and name not in names:
                continue

            def make(port: int = port) -> message.Message:
                return rds.port_table(
                    ctx.services,
                    port,
                    proxy.namespace,
                    proxy.cluster_id,
                    policy,
                    ctx.networking,
                    proxy.labels,
                )

            lk = proxyview.labels_key(proxy.labels) if ctx.networking.uses_source_labels() else None
            key = ("rds-port", name, proxy.namespace, proxy.cluster_id, policy, lk)
            out.append(
                self.cache.resource(ctx.version, key, (ctx.services, ctx.networking), _builder(name, make))
            )
        return resources.generated(resources.TYPE_RDS, out)

    def _sidecar_routes(
        self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot, names: Names
    ) -> resources.Generated:
        wanted = naming.outbound_route()
        out = []
        if names is None or wanted in names:
            out.append(
                self.cache.resource(
                    ctx.version,
                    (
                        "rds-out",
                        wanted,
                        proxy.namespace,
                        proxy.cluster_id,
                        proxyview.labels_key(proxy.labels),
                    ),
                    (ctx.services, ctx.networking),
                    _builder(
                        wanted,
                        lambda: rds.outbound(
                            ctx.services,
                            proxy.namespace,
                            proxy.cluster_id,
                            wanted,
                            ctx.networking,
                            proxy.labels,
                        ),
                    ),
                )
            )
        return resources.generated(resources.TYPE_RDS, out)

    def _router_routes(
        self, proxy: proxy_model.Proxy, ctx: snapshot.Snapshot, names: Names
    ) -> resources.Generated:
        out = []
        for name in gateways.http_route_names(proxy, ctx.networking):
            if names is not None and name not in names:
                continue
            port = int(name.split(".", 1)[1])
            out.append(resources.pack(name, gateways.route_config(proxy, ctx.networking, ctx.services, port)))
        return resources.generated(resources.TYPE_RDS, out)
