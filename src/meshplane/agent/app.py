"""`meshplane agent proxy sidecar|router`: the composition of the in-pod agent (pilot-agent).

Start order: SDS and the xDS proxy listen first (Envoy connects to both at start), the cert
manager begins fetching, the bootstrap is written, readiness starts answering, Envoy starts. Envoy
asks for its secrets at once and its listeners stay warming until the first certificate arrives.
Stop order (SIGTERM): drain Envoy's listeners for TERMINATION_DRAIN_DURATION_SECONDS while SDS
and xDS still serve, stop Envoy by PID, then the servers.

In-pod paths (all through runtime.podroot, so a lab pod keeps them under its own folder):
  /var/run/secrets/tokens/istio-token       projected service-account token (audience istio-ca)
  /var/run/secrets/istio/root-cert.pem      istio-ca-root-cert ConfigMap (trust for 15012)
  /etc/hosts                                names the agent resolves before DNS (see upstream.py)
  /etc/istio/pod/labels                     downward-API pod labels (optional)
  /etc/istio/proxy/XDS                      the agent's ADS socket Envoy connects to
  /var/run/secrets/workload-spiffe-uds/socket  the agent's SDS socket
  /etc/istio/proxy/admin.sock               Envoy's admin API
  /etc/istio/proxy/envoy-rev.json           the bootstrap
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from meshplane.agent import (
    admin,
    bootstrap,
    certclient,
    config,
    dnsproxy,
    dnstable,
    envoy,
    health,
    metrics,
    rotation,
    sds,
    stats,
    statusserver,
    uds,
    upstream,
    workloadcert,
    xdsproxy,
)
from meshplane.model.proxy import ProxyType
from meshplane.runtime import clock as runclock
from meshplane.runtime import podroot, signals, tasks
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

STATUS_PORT = 15021
RESOLV_CONF = "/etc/resolv.conf"


@dataclass(frozen=True, slots=True)
class PodPaths:
    token: Path
    root_cert: Path
    hosts: Path
    labels: Path
    bootstrap: Path
    xds: uds.UdsAddress
    sds: uds.UdsAddress
    admin: uds.UdsAddress


def pod_paths() -> PodPaths:
    p = podroot.path
    return PodPaths(
        token=p(config.TOKEN_PATH),
        root_cert=p(config.ROOT_CERT_PATH),
        hosts=p(config.HOSTS_PATH),
        labels=p(bootstrap.POD_LABELS_FILE),
        bootstrap=p(config.BOOTSTRAP_PATH),
        xds=uds.address(p(config.XDS_SOCKET)),
        sds=uds.address(p(config.SDS_SOCKET)),
        admin=uds.address(p(config.ADMIN_SOCKET)),
    )


def read_pod_labels(paths: PodPaths) -> dict[str, str] | None:
    if not paths.labels.is_file():
        return None
    return bootstrap.parse_downward_labels(paths.labels.read_text(errors="replace"))


def bootstrap_options(cfg: config.AgentConfig, paths: PodPaths) -> bootstrap.BootstrapOptions:
    """Envoy talks ADS and SDS to the agent's unix sockets; admin is a unix socket too."""
    xds = paths.xds
    return bootstrap.BootstrapOptions(
        proxy_type=cfg.proxy_type,
        pod_name=cfg.pod_name,
        namespace=cfg.namespace,
        ips=(cfg.instance_ip,),
        discovery_address=f"unix:{xds.envoy_pipe}" if xds.abstract else f"unix://{xds.path}",
        metadata=cfg.metadata,
        dns_domain=cfg.dns_domain,
        delta=cfg.delta,
        admin_socket=paths.admin.envoy_pipe,
        sds_socket=paths.sds.envoy_pipe,
    )


def _resolv_conf() -> str:
    """The pod's resolv.conf (in the lab's pod root when it has one, else the namespace's /etc)."""
    for p in (podroot.path(RESOLV_CONF), Path(RESOLV_CONF)):
        try:
            return p.read_text()
        except OSError:
            continue
    return ""


def _nameservers(resolv: str) -> list[str]:
    return [
        w[1] for w in (line.split() for line in resolv.splitlines()) if len(w) >= 2 and w[0] == "nameserver"
    ]


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


class Agent:
    def __init__(
        self,
        cfg: config.AgentConfig,
        paths: PodPaths,
        *,
        clock: runclock.Clock,
        envoy_binary: str,
        status_port: int = STATUS_PORT,
        stats_port: int = config.STATS_PORT,
        proxy_log_level: str = "warning",
        proxy_component_log_level: str = "",
    ) -> None:
        self.cfg = cfg
        self.paths = paths
        self._clock = clock
        self._envoy_binary = envoy_binary
        self._status_port = status_port
        self._log_level = proxy_log_level
        self._group = tasks.TaskGroup(f"agent/{cfg.pod_name}.{cfg.namespace}")
        self._envoy_task: asyncio.Task[None] | None = None
        self.store = workloadcert.Store()
        log_id = cfg.node_id
        self.admin = admin.AdminClient(paths.admin)
        self.sds = sds.SdsServer(self.store, paths.sds, log_id=log_id)
        self.dns: dnsproxy.DnsProxy | None = None
        search: list[str] = []
        if cfg.dns_capture:
            resolv = _resolv_conf()
            search = dnstable.search_domains(resolv)
            self.dns = dnsproxy.DnsProxy(cfg.localhost, dnstable.nameservers(resolv), log_id=log_id)
        dns = self.dns
        self.xds = xdsproxy.XdsProxy(
            self._upstream(cfg.discovery_address),
            paths.xds,
            clock=clock,
            log_id=log_id,
            on_name_table=(
                (lambda t: dns.update(dnstable.build(t, cfg.namespace, search))) if dns is not None else None
            ),
        )
        self.metrics = metrics.AgentMetrics(self.store, clock)
        self.certs = rotation.CertManager(
            identity=cfg.identity,
            algorithm=cfg.key_algorithm,
            ttl_seconds=cfg.secret_ttl,
            source=self.metrics.counting(certclient.CertClient(self._upstream(cfg.ca_address))),
            store=self.store,
            clock=clock,
            log_id=log_id,
        )
        self.health = health.HealthServer(
            self.admin,
            cfg.instance_ip,
            status_port,
            log_id=log_id,
            routes=stats.routes(self.admin),
            on_ready=self.metrics.ready,
        )
        self.status = statusserver.StatusServer(
            self.admin,
            self.metrics,
            cfg.instance_ip,
            stats_port,
            app=cfg.app_scrape,
            app_host=cfg.localhost,
            log_id=log_id,
        )
        self.envoy = envoy.Supervisor(
            envoy.EnvoyOptions(
                config_path=paths.bootstrap,
                binary=envoy_binary,
                log_level=proxy_log_level,
                component_log_level=proxy_component_log_level,
                concurrency=cfg.concurrency,
            ),
            clock=clock,
            log_id=log_id,
        )

    def _upstream(self, address: str) -> upstream.Upstream:
        return upstream.Upstream(
            address=address,
            cluster_id=self.cfg.cluster_id,
            token_path=self.paths.token,
            root_cert_path=self.paths.root_cert,
            hosts_path=self.paths.hosts,
            tls=self.cfg.control_plane_tls,
            server_name=self.cfg.istiod_san,
        )

    async def start(self) -> None:
        cfg = self.cfg
        text = bootstrap.render(bootstrap_options(cfg, self.paths))
        await asyncio.to_thread(_write_atomic, self.paths.bootstrap, text)
        await self.sds.start()
        self._group.on_stop(self.sds.stop)
        if self.dns is not None:
            await self.dns.start()
            self._group.on_stop(self.dns.stop)
        await self.xds.start()
        self._group.on_stop(self.xds.stop)
        self._group.start(self.certs.run(), "certs")
        await self.health.start()
        self._group.on_stop(self.health.stop)
        await self.status.start()
        self._group.on_stop(self.status.stop)
        self._envoy_task = self._group.start(self.envoy.run(), "envoy")
        self._group.on_stop(self._stop_envoy)
        log.info(
            "agent started %s",
            kv(
                proxy=cfg.node_id,
                identity=cfg.identity,
                cluster=cfg.cluster_id,
                discovery=cfg.discovery_address,
                ca=cfg.ca_address,
                status=f"{cfg.instance_ip}:{self.health.port}",
                stats=f"{cfg.instance_ip}:{self.status.port}",
                localhost=cfg.localhost,
            ),
        )

    async def _stop_envoy(self) -> None:
        inbound_only = self.cfg.proxy_type is ProxyType.SIDECAR
        await self.envoy.stop(lambda: self.admin.drain_listeners(inbound_only), self.cfg.drain_seconds)

    async def stop(self) -> None:
        await self._group.stop()
        log.info("agent stopped %s", kv(proxy=self.cfg.node_id, envoy_restarts=self.envoy.restarts))

    async def run_until_signal(self) -> None:
        """Start, serve until SIGTERM/SIGINT, stop."""
        with signals.StopOnSignal() as stop:
            try:
                await self.start()
                assert self._envoy_task is not None
                waiter = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, self._envoy_task}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if self._envoy_task.done() and not self._envoy_task.cancelled():
                    error = self._envoy_task.exception()
                    if error is not None:
                        raise error
                log.info(
                    "signal received, draining %s",
                    kv(proxy=self.cfg.node_id, drain=f"{self.cfg.drain_seconds:g}s"),
                )
            finally:
                await self.stop()


@dataclass(frozen=True, slots=True)
class Flags:
    """pilot-agent's command-line flags that meshplane honours (the injector passes Istio's)."""

    status_port: int = STATUS_PORT
    proxy_log_level: str = "warning"
    proxy_component_log_level: str = ""
    domain: str = ""  # `NS.svc.cluster.local`
    trust_domain: str = ""
    concurrency: int | None = None
    envoy_binary: str = ""


def build(proxy_type: ProxyType, env: dict[str, str], flags: Flags) -> Agent:
    """The agent for this pod's environment and flags; ConfigError names what is wrong."""
    paths = pod_paths()
    env = dict(env)
    if flags.trust_domain:
        env["TRUST_DOMAIN"] = flags.trust_domain
    if flags.domain:
        env["DNS_DOMAIN"] = config.dns_domain_from_flag(flags.domain, env.get("POD_NAMESPACE", ""))
    cfg = config.from_env(env, proxy_type, read_pod_labels(paths))
    if flags.concurrency is not None:
        cfg = dataclasses.replace(cfg, concurrency=flags.concurrency)
    return Agent(
        cfg,
        paths,
        clock=runclock.SystemClock(),
        envoy_binary=flags.envoy_binary or envoy.binary(),
        status_port=flags.status_port,
        proxy_log_level=flags.proxy_log_level,
        proxy_component_log_level=flags.proxy_component_log_level,
    )


def run(proxy_type: ProxyType, env: dict[str, str], flags: Flags) -> None:
    """Build the agent and serve until SIGTERM/SIGINT."""
    agent = build(proxy_type, env, flags)
    asyncio.run(agent.run_until_signal())
