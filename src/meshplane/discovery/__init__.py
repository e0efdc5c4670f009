"""discovery: `meshplane discovery`, the control plane process (Istio's pilot-discovery).

- options.py   flags and Istio's env variables → one validated Options (OptionsError names the flag)
- run.py       foreground run: GC tuning, start, serve until SIGINT/SIGTERM, ordered stop
- app.py       Discovery, the composition root: wires kube clients, registries, push queue, xds
               generators, the ADS + CA gRPC server, debug HTTP and per-cluster controllers
- config.py    config-cluster config: mesh ConfigMap, PeerAuthentication, Gateway, VirtualService
- managed.py   controllers run in every managed cluster (root-cert namespaces, webhook caBundle),
               republishing the trust bundle security/carotation hands it after a CA change
- webhook.py   the HTTPS injection webhook server on 15017
- errors.py    DiscoveryError, OptionsError

Flow: cli → options.build → run.run → app.Discovery.start: informers (kube) feed registries
(registry) whose changes go to the push queue (push), which snapshots a PushContext and hands it
to the ADS server (server), whose streams are answered by the generators (xds). Stop runs in
reverse start order.
"""
