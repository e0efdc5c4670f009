"""What a lab node runs (one per lab cluster).

- `app`         the node runtime's composition root (`meshplane lab node`): caches, controllers,
                kubelet, kube-proxy and DNS wired for one cluster.
- `kubelet`     runs the Pods bound to the node: one `podworker.PodWorker` per Pod uid; it
                implements `podworker.PodHost`, so the worker never imports it.
- `settings`    the kubelet's settings (address ranges, folders, timings).
- `podworker`   one Pod's life: sandbox (IP, folder, volumes), init containers, containers,
                restarts, probes, termination.
- `process`     container processes: started in their own session, logged, recorded by PID.
- `containerlog` container logs in the CRI format (current and previous instance), read back with
                the kubelet's options (tail, since, timestamps, limit, follow).
- `kubeletapi`  the kubelet's HTTPS API the dev cluster proxies pods/log, exec and attach to
                (client-certificate authenticated); `remotecommand` the exec/attach sessions over
                the v5/v4 channel WebSocket protocols; `portforward` port forwarding over
                `spdy` (a SPDY/3.1 server session, tunnelled in a WebSocket).
- `podspec`     pure readings of a Pod spec (env, downward API, containers); `podstatus` the
                status built from what a worker knows; `statuswriter` writes it to the API.
- `volumes`     a pod's folder: projected tokens, ConfigMaps, Secrets, emptyDirs.
- `probes`      readiness probes (httpGet, tcpSocket).  `images` which program an image runs.
- `kubeproxy`   Service addresses forwarded to endpoints.  `dns` the cluster's hosts file.

kubelet → podworker → (volumes, process, probes) → podstatus → statuswriter → API.
"""
