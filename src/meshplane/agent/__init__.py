"""agent: the in-pod proxy agent (Istio's pilot-agent), run by `meshplane agent proxy`.

- config.py       the pod's environment and files → the agent's settings (pure)
- app.py          the composition: start order, run, drain and stop
- bootstrap.py    Envoy's v3 bootstrap: node id and metadata, ADS, SDS, admin
- upstream.py     how the discovery address is reached: TLS, name resolution, call metadata, token
- csr.py          the workload key and CSR with the SPIFFE identity
- certclient.py   the CA client (IstioCertificateService/CreateCertificate)
- workloadcert.py the validated key, chain and root, and the store that holds them
- rotation.py     fetch the workload certificate, rotate it at half its lifetime
- sds.py          Envoy's SDS on a unix socket (`default`, `ROOTCA`)
- xdsproxy.py     Envoy's ADS on a unix socket, carried to the discovery address per stream (plus
                  the agent's own NameTable subscription with DNS capture)
- envoy.py        Envoy as a child process: start, restart with backoff, drain, stop
- admin.py        a client of Envoy's admin API (readiness, stats, drain)
- health.py       readiness on INSTANCE_IP:15021 /healthz/ready
- stats.py        the console's read-only JSON pages on the readiness port: per-host upstream
                  counters (/stats/upstreams) and the names Envoy holds (/stats/config)
- metrics.py      the agent's own Prometheus metrics (istio_agent_*, as pilot-agent names them)
- statusserver.py the status port INSTANCE_IP:15020: agent + Envoy (+ the app's) metrics merged on
                  /stats/prometheus, /healthz/ready
- uds.py          unix-socket addresses shared by grpc, aiohttp and Envoy
- ndsproto.py     Istio's NameTable message (pkg/dns/proto/nds.proto), built without protoc
- dnstable.py     the DNS proxy's lookups (NameTable + search path) and DNS messages (pure)
- dnsproxy.py     DNS on the pod's localhost:15053, UDP and TCP: the table's names, the rest
                  forwarded to resolv.conf's nameservers (ISTIO_META_DNS_CAPTURE=true)
- iptables.py     istio-iptables' rules (pure): flags → validated settings → iptables-restore input
- capture.py      apply / clean those rules in this network namespace (backend detection, restore)
- errors.py       AgentError, BootstrapError, ConfigError, CredentialError, CertificateError, ...
                  (IptablesError lives in iptables.py)

Flow: config.from_env → app starts SDS and xdsproxy → rotation (csr → certclient over upstream →
workloadcert store) feeds sds → bootstrap is written → envoy starts and connects to sds and
xdsproxy → health answers ready once Envoy (through admin) is.
"""
