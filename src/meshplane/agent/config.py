"""The agent's settings, read from the pod's environment the way Istio's pilot-agent reads them.

Pure: `from_env` takes a mapping, so every rule is unit-tested without a process. Names and
defaults follow SPEC.md §6/§7 (injected env) and Istio's pilot-agent: POD_NAME, POD_NAMESPACE,
INSTANCE_IP, SERVICE_ACCOUNT, TRUST_DOMAIN, CA_ADDR, PROXY_CONFIG (JSON or YAML ProxyConfig, with
`proxyMetadata` applied as env overrides), SECRET_TTL, ECC_SIGNATURE_ALGORITHM, ISTIO_META_* and
ISTIO_METAJSON_* (node metadata, built by bootstrap.metadata_from_env),
TERMINATION_DRAIN_DURATION_SECONDS, ISTIO_DELTA_XDS (Delta ADS instead of State of the World),
ISTIOD_SAN (the name to verify the control plane's certificate against), ISTIO_PROMETHEUS_ANNOTATIONS
(the app's own scrape settings, merged on the status port), ISTIO_META_DNS_CAPTURE (the DNS
proxy on 15053).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshplane.agent import bootstrap, csr, errors
from meshplane.model.proxy import ProxyType
from meshplane.runtime import durations

DEFAULT_DISCOVERY = "istiod.istio-system.svc:15012"
DEFAULT_TTL = 24 * 3600.0
TOKEN_PATH = "/var/run/secrets/tokens/istio-token"
ROOT_CERT_PATH = "/var/run/secrets/istio/root-cert.pem"
HOSTS_PATH = "/etc/hosts"
XDS_SOCKET = "/etc/istio/proxy/XDS"
SDS_SOCKET = "/var/run/secrets/workload-spiffe-uds/socket"
ADMIN_SOCKET = "/etc/istio/proxy/admin.sock"
BOOTSTRAP_PATH = "/etc/istio/proxy/envoy-rev.json"
LOCALHOST_META = "MESHPLANE_LOCALHOST"
STATS_PORT = 15020  # Istio's status port: merged metrics (statusserver.py)
PROMETHEUS_ENV = "ISTIO_PROMETHEUS_ANNOTATIONS"


def parse_duration(text: str) -> float:
    """A non-negative Go duration (`24h`, `60s`, `1h30m`, `500ms`; no bare numbers) in seconds."""
    try:
        seconds = durations.parse_go(text)
    except ValueError as e:
        raise errors.ConfigError(str(e)) from e
    if seconds < 0:
        raise errors.ConfigError(f"invalid duration {text!r}: must not be negative")
    return seconds


def dns_domain_from_flag(domain: str, namespace: str) -> str:
    """pilot-agent's `--domain NS.svc.cluster.local` names the pod's search domain; the cluster
    DNS domain is what follows `NS.svc.`."""
    d = domain.strip().strip(".")
    for prefix in (f"{namespace}.svc.", "svc."):
        if d.startswith(prefix) and len(d) > len(prefix):
            return d[len(prefix) :]
    if ".svc." in d:
        return d.split(".svc.", 1)[1]
    if not d or any(c.isspace() for c in d):
        raise errors.ConfigError(f"--domain {domain!r} is not a DNS domain")
    return d


def log_level_from_flag(value: str) -> str:
    """pilot-agent's `--log_output_level` (`default:info,ads:debug`) as a Python level name."""
    levels = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "warning": "WARNING", "error": "ERROR"}
    levels["fatal"] = levels["none"] = "CRITICAL"
    chosen = ""
    for part in value.split(","):
        scope, sep, level = part.strip().rpartition(":")
        if not sep:
            scope, level = "default", part.strip()
        if level.lower() not in levels:
            raise errors.ConfigError(f"--log_output_level {value!r}: unknown level {level!r}")
        if scope == "default" or not chosen:
            chosen = levels[level.lower()]
    if not chosen:
        raise errors.ConfigError(f"--log_output_level {value!r} names no level")
    return chosen


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`, validated."""
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        raise errors.ConfigError(f"address {address!r} is not host:port")
    host = host.removeprefix("[").removesuffix("]")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.ConfigError(f"address {address!r} has an invalid port")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class AppScrape:
    port: int
    path: str


def app_scrape(value: str | None, status_port: int) -> AppScrape | None:
    """ISTIO_PROMETHEUS_ANNOTATIONS (JSON `{"scrape","path","port"}`) → what to scrape, or None.

    As Istio: `scrape: "false"` turns it off, the path defaults to /metrics and the port to 80, and a
    port equal to the status port is refused (the agent would scrape itself)."""
    if not value:
        return None
    try:
        raw = json.loads(value)
    except json.JSONDecodeError as e:
        raise errors.ConfigError(f"{PROMETHEUS_ENV} is not JSON: {e}") from e
    if not isinstance(raw, dict) or not all(
        isinstance(raw.get(k, ""), str) for k in ("scrape", "path", "port")
    ):
        raise errors.ConfigError(f'{PROMETHEUS_ENV} must be an object of strings "scrape", "path", "port"')
    if raw.get("scrape") == "false":
        return None
    path = raw.get("path") or "/metrics"
    port_text = raw.get("port") or "80"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise errors.ConfigError(f"{PROMETHEUS_ENV}.port {port_text!r} is not a port number")
    if int(port_text) == status_port:
        raise errors.ConfigError(
            f"{PROMETHEUS_ENV}.port is the agent's status port {status_port}: the agent would scrape itself "
            f"(remove prometheus.io/port={status_port} from the pod, or inject it only once)"
        )
    return AppScrape(int(port_text), path if path.startswith("/") else "/" + path)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    proxy_type: ProxyType
    pod_name: str
    namespace: str
    instance_ip: str
    service_account: str
    trust_domain: str
    cluster_id: str
    discovery_address: str
    ca_address: str
    secret_ttl: float
    key_algorithm: csr.KeyAlgorithm
    localhost: str
    drain_seconds: float
    concurrency: int
    control_plane_tls: bool
    dns_domain: str
    delta: bool
    app_scrape: AppScrape | None = None  # the app's metrics to merge on the status port (sidecars)
    dns_capture: bool = False  # ISTIO_META_DNS_CAPTURE: serve DNS on 15053 from the NameTable
    istiod_san: str = ""  # ISTIOD_SAN: verify the control plane as this name (e.g. when dialing an IP)
    # node metadata: ISTIO_META_* without the prefix (plus MESHPLANE_LOCALHOST), ISTIO_METAJSON_* parsed
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        return csr.spiffe_id(self.trust_domain, self.namespace, self.service_account)

    @property
    def node_id(self) -> str:
        """Istio's node id `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN`."""
        ns = self.namespace
        return f"{self.proxy_type}~{self.instance_ip}~{self.pod_name}.{ns}~{ns}.svc.{self.dns_domain}"

    @property
    def discovery_sni(self) -> str:
        """The name the control plane's cert must carry: ISTIOD_SAN, else the discovery host."""
        return self.istiod_san or split_host_port(self.discovery_address)[0]


def parse_proxy_config(text: str) -> dict[str, Any]:
    """PROXY_CONFIG is a ProxyConfig in JSON (what the injector writes) or YAML."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise errors.ConfigError(f"PROXY_CONFIG is neither JSON nor YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise errors.ConfigError("PROXY_CONFIG must be a mapping")
    return data


def _ip(name: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as e:
        raise errors.ConfigError(f"{name} must be an IP address, got {value!r}") from e


def _int(name: str, value: object, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(str(value))
    except ValueError as e:
        raise errors.ConfigError(f"{name} must be an integer, got {value!r}") from e
    if number < 0:
        raise errors.ConfigError(f"{name} must not be negative")
    return number


def from_env(
    env: Mapping[str, str], proxy_type: ProxyType, pod_labels: Mapping[str, str] | None = None
) -> AgentConfig:
    """`pod_labels`: the downward-API labels file's content, when the pod mounts one."""
    pc = parse_proxy_config(env.get("PROXY_CONFIG", ""))
    overrides = pc.get("proxyMetadata") or {}
    if not isinstance(overrides, dict):
        raise errors.ConfigError("PROXY_CONFIG.proxyMetadata must be a mapping")
    env = {**env, **{str(k): str(v) for k, v in overrides.items()}}

    for required in ("POD_NAME", "POD_NAMESPACE", "INSTANCE_IP"):
        if not env.get(required):
            raise errors.ConfigError(f"{required} is not set")
    instance_ip = _ip("INSTANCE_IP", env["INSTANCE_IP"])
    localhost = _ip("ISTIO_META_" + LOCALHOST_META, env.get("ISTIO_META_" + LOCALHOST_META) or "127.0.0.1")
    discovery = str(pc.get("discoveryAddress") or DEFAULT_DISCOVERY)
    split_host_port(discovery)
    ca_address = env.get("CA_ADDR") or discovery
    split_host_port(ca_address)
    ttl = parse_duration(env["SECRET_TTL"]) if env.get("SECRET_TTL") else DEFAULT_TTL
    if ttl < 1:
        raise errors.ConfigError("SECRET_TTL must be at least 1s")
    drain = env.get("TERMINATION_DRAIN_DURATION_SECONDS")
    auth_policy = str(pc.get("controlPlaneAuthPolicy") or "MUTUAL_TLS").upper()
    if auth_policy not in ("MUTUAL_TLS", "NONE"):
        raise errors.ConfigError(
            f"PROXY_CONFIG.controlPlaneAuthPolicy {auth_policy!r} is not MUTUAL_TLS or NONE"
        )

    try:
        metadata = bootstrap.metadata_from_env(env, pod_labels)
    except errors.BootstrapError as e:
        raise errors.ConfigError(str(e)) from e
    metadata[LOCALHOST_META] = localhost
    cluster_id = env.get("ISTIO_META_CLUSTER_ID") or "Kubernetes"
    metadata.setdefault("CLUSTER_ID", cluster_id)
    metadata.setdefault("INSTANCE_IPS", instance_ip)
    metadata.setdefault("SERVICE_ACCOUNT", env.get("SERVICE_ACCOUNT") or "default")
    trust_domain = env.get("TRUST_DOMAIN") or "cluster.local"
    if env.get("ISTIO_META_MESH_ID") is None:
        metadata.setdefault("MESH_ID", trust_domain)

    service_account = env.get("SERVICE_ACCOUNT") or "default"
    csr.spiffe_id(trust_domain, env["POD_NAMESPACE"], service_account)  # validates the three parts
    return AgentConfig(
        proxy_type=proxy_type,
        pod_name=env["POD_NAME"],
        namespace=env["POD_NAMESPACE"],
        instance_ip=instance_ip,
        service_account=service_account,
        trust_domain=trust_domain,
        cluster_id=cluster_id,
        discovery_address=discovery,
        ca_address=ca_address,
        secret_ttl=ttl,
        key_algorithm=csr.algorithm_from_env(env.get("ECC_SIGNATURE_ALGORITHM")),
        localhost=localhost,
        drain_seconds=float(_int("TERMINATION_DRAIN_DURATION_SECONDS", drain, 5)),
        concurrency=_int("PROXY_CONFIG.concurrency", pc.get("concurrency"), 2),
        control_plane_tls=auth_policy == "MUTUAL_TLS",
        dns_domain=env.get("DNS_DOMAIN") or "cluster.local",
        delta=env.get("ISTIO_DELTA_XDS", "").lower() == "true",
        istiod_san=env.get("ISTIOD_SAN", ""),
        # Istio merges the app's metrics for sidecars only (status/server.go NewServer)
        dns_capture=env.get("ISTIO_META_DNS_CAPTURE", "").lower() == "true",
        app_scrape=app_scrape(env.get(PROMETHEUS_ENV), STATS_PORT)
        if proxy_type is ProxyType.SIDECAR
        else None,
        metadata=metadata,
    )
