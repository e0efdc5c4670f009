"""push: from registry changes to pushes, one immutable snapshot per push.

- debounce.py  merge bursts of change events into one push request (PILOT_DEBOUNCE_AFTER / _MAX)
- queue.py     the push queue: debounced requests in, one PushContext per push, fanned out
- context.py   PushContext (immutable snapshot of the mesh) and PushRequest (full or EDS-only hosts)
- pending.py   a connection's single pending push; newer pushes merge into it, never a backlog
- metrics.py   push pipeline and xDS server metrics with Istio's names
- propagation.py  change seen by a cluster's watch → last proxy's ACK: meshplane_config_propagation_seconds
               {cluster,type} and pilot_proxy_convergence_time (both end at the ACK)

Flow: registry change → queue.enqueue → debounce waits for quiet (or the cap) → the queue asks
the config source for a PushContext → the target (server.ads) offers it to every connection's
pending push → each connection sends what the request affects (an EDS push sends only EDS).
"""
