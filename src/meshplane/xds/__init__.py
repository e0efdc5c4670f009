"""xds: pure generators of Envoy resources, one per type, as functions of (proxy, snapshot).

- generator.py  the entry point the ADS server calls: picks the generators for the proxy's type
- sidecarscope.py  a Sidecar-scoped proxy's view: the snapshot restricted to its imported services
                (and its outbound traffic policy), the cache keyed by the Sidecar
- snapshot.py   the protocol generators read (push.context.PushContext satisfies it)
- proxyview.py  facts about a proxy read from its node metadata (localhost address, SDS, ...)
- cds.py        clusters: outbound EDS clusters (and DestinationRule subsets), inbound clusters,
                SNI-DNAT clusters, Passthrough-, BlackHole- and InboundPassthroughCluster
- eds.py        ClusterLoadAssignments per `outbound|PORT|SUBSET|HOST` from every cluster's shard
- locality.py   locality LB: EDS priorities/weights relative to the proxy's locality (Istio's
                localityLbSetting: default failover, failover, failoverPriority, distribute)
- transparent.py  a captured sidecar's listeners (INTERCEPTION_MODE REDIRECT, the default):
                virtualOutbound 15001, 0.0.0.0_PORT, VIP_PORT, virtualInbound 15006
- lds.py        an explicit-proxy sidecar's listeners (INTERCEPTION_MODE NONE) and the inbound
                filter chains both layouts share
- rds.py        outbound route configurations: `PORT` per port (captured), one table (explicit)
- httproute.py  VirtualService `http` routes as Envoy routes: the one builder sidecars and gateways use
- tcproute.py   VirtualService `tcp` routes of a sidecar's TCP service ports (VIP_PORT listeners)
- trafficpolicy.py  a DestinationRule's policy as cluster settings (LB, circuit breakers, outlier
                detection) and the route's hash policy
- gateways.py   router mode: listeners, routes and clusters a Gateway config asks for
- inbound.py    a sidecar's own service ports (index built once per push)
- nds.py        Istio's NDS: the NameTable (hostname → ClusterIPs, headless endpoints) a proxy's DNS
                proxy answers from, per proxy cluster and network
- rbac.py       AuthorizationPolicy → Envoy RBAC filters (HTTP and network) of the inbound chains
- jwt.py        RequestAuthentication → the jwt_authn HTTP filter of the inbound chains
- mtls.py, filters.py, protos.py  shared TLS contexts, filters and protobuf constructors
- naming.py     Istio's names for clusters, SNI, listeners and routes
- cache.py      each resource built and serialized once per (push version, name, proxy view)
- resources.py  type URLs and the serialized Resource shared by every stream
- errors.py     XdsError, UnsupportedTypeError, ResourceNameError

Flow: server.respond → generator.generate(type_url, proxy, ctx, names) → cache hit, or the
type's builder (cds/eds/transparent|lds/rds/gateways/nds) over the snapshot →
resources.Resource (packed once).
"""
