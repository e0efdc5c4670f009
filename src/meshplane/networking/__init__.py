"""networking: Istio's networking.istio.io config (Gateway, VirtualService, DestinationRule,
Sidecar, ServiceEntry) as the model needs it.

- objects.py         what every networking object has: group/version, kind, namespace/name
- gateway.py         Gateway: which ports a router proxy opens and for which hosts
- virtualservice.py  VirtualService: HTTP routes for sidecars and gateways, TLS/TCP routes for gateways
- destinationrule.py DestinationRule: subsets and traffic policies of a host, Istio's merge rules
- sidecar.py         Sidecar: which services a sidecar proxy imports (egress hosts), its outbound
                     traffic policy, and which Sidecar applies to a proxy (selector, namespace, root)
- serviceentry.py    ServiceEntry: hosts outside the registry (resolution NONE/STATIC/DNS, endpoints,
                     MESH_EXTERNAL/MESH_INTERNAL) as services and endpoint shards joining the push's
- hosts.py           host name rules: wildcard overlap, `namespace/dnsName` gateway hosts
- config.py          NetworkingConfig: every valid Gateway, VirtualService, DestinationRule and
                     Sidecar of a push; which DestinationRule a proxy applies to a host
- errors.py          ConfigError (an invalid object: names the object and the field path)

Typed field reads and ConfigError live in model/crfields.py, shared with policy/.

Flow: discovery/config.py lists the objects from the config cluster → gateway / virtualservice /
destinationrule parse each (model/crfields, hosts), a bad one is logged and skipped → config.NetworkingConfig
(indexed by host) goes into the push context → xds/gateways.py builds a router's listeners and
routes from it; xds/cds.py, eds.py, rds.py (httproute.py) and tcproute.py a sidecar's subsets,
traffic policies and routes.
"""
