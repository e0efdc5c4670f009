"""model: the mesh's vocabulary, frozen dataclasses with no behaviour beyond their own rules.

- ids.py        ClusterId, Hostname, ProxyId (NewTypes)
- service.py    a mesh Service: one hostname, merged from every cluster that has it
- endpoint.py   an Endpoint, tagged with its cluster and network, plus its health
- proxy.py      a connected proxy (node id and metadata), ProxyType
- mesh.py       the mesh-wide settings registry and generators need (MeshConfig subset)
- injection.py  Istio's sidecar-injection selectors, shared by installer and webhook
- crfields.py   typed reads of an Istio config object naming the field path, ConfigError, Meta
                (shared by networking/ and policy/)

Flow: registry/ builds these from Kubernetes objects, push/ snapshots them, xds/ reads them, and
server/ builds Proxy from a stream's node. model/ imports nothing else of meshplane but the root
`meshplane.errors`.
"""
