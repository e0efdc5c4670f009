"""policy: Istio's security.istio.io config (PeerAuthentication, AuthorizationPolicy,
RequestAuthentication) as the model needs it.

- objects.py      what every security.istio.io object has: group/version, kind, namespace/name
- selector.py     `selector.matchLabels` (workload selector) and its validation
- peerauthn.py    PeerAuthentication: parse, and compose the effective mTLS mode of a workload
                  per port with Istio's inheritance (mesh → namespace → workload → port)
- authz.py        AuthorizationPolicy: parse and validate (ALLOW, DENY, AUDIT; CUSTOM, targetRefs
                  and request.auth.* keys refused), and which policies apply to a workload
- reqauthn.py     RequestAuthentication: JWT rules (issuer, audiences, inline jwks, token locations)
- config.py       PolicyConfig: every valid policy of a push, looked up per workload

Typed field reads and ConfigError are model/crfields.py (shared with networking/).

Flow: discovery/config.py lists the objects from the config cluster → the parsers here check each
(a bad one is logged, counted and skipped) → config.PolicyConfig goes into the push context →
xds/ builds the sidecar's inbound chains (and EDS the endpoints' tlsMode) and its JWT and RBAC
filters (xds/jwt.py, xds/rbac.py) from it.
"""
