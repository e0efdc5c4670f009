"""`meshplane discovery` settings: flags, with the environment variables Istio's pilot-discovery reads.

Precedence: a flag given on the command line, else the env variable, else Istio's default.
Every value is validated here so the process fails fast with a message naming the flag or variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshplane.discovery import errors
from meshplane.runtime import durations


@dataclass(frozen=True, slots=True)
class Options:
    kubeconfig: str | None = None
    context: str | None = None
    cluster_id: str = "Kubernetes"
    network: str = ""
    mesh_id: str = ""
    trust_domain: str = "cluster.local"
    namespace: str = "istio-system"
    revision: str = "default"
    pod_name: str = ""
    bind_address: str = "0.0.0.0"
    xds_plaintext_port: int | None = 15010  # None: off
    secure_grpc_port: int | None = 15012
    monitoring_port: int = 15014
    webhook_port: int | None = 15017
    external_istiod: bool = False
    debounce_after: float = 0.1
    debounce_max: float = 10.0
    remote_cluster_timeout: float = 30.0
    resync_period: float = 300.0
    workload_cert_ttl: float = 24 * 3600.0
    max_workload_cert_ttl: float = 90 * 24 * 3600.0
    # how long a replaced root stays trusted after a CA change; None: max_workload_cert_ttl
    root_cert_transition: float | None = None
    # Istio's self-signed root: lifetime, renewal check interval (<= 0: off), grace %, jitter
    self_signed_ca_cert_ttl: float = 3650 * 24 * 3600.0
    root_cert_check_interval: float = 3600.0
    root_cert_grace_percent: int = 20
    root_cert_jitter: bool = True
    insecure_kubeconfig_options: tuple[str, ...] = ()
    custom_hosts: tuple[str, ...] = ()
    # names and IPs the serving cert must also cover (the install gives istiod's service and LB names)
    extra_san: tuple[str, ...] = field(default_factory=tuple)
    enable_leader_election: bool = True


def _bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise errors.OptionsError(f"{name}: expected true or false, got {raw!r}")


def _duration(name: str, raw: str) -> float:
    try:
        value = durations.parse(raw)
    except ValueError as e:
        raise errors.OptionsError(f"{name}: {e}") from e
    if value < 0:
        raise errors.OptionsError(f"{name}: must not be negative")
    return value


def _port(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if not 0 <= value <= 65535:
        raise errors.OptionsError(f"{name}: port {value} is out of range")
    return value


def _list(raw: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def build(flags: Mapping[str, object], env: Mapping[str, str] | None = None) -> Options:
    """Options from parsed CLI flags (None = not given) and the environment."""
    env = os.environ if env is None else env

    def pick(flag: str, var: str | None, default: object) -> object:
        value = flags.get(flag)
        if value is not None:
            return value
        if var and var in env:
            return env[var]
        return default

    def duration(flag: str, var: str, default: float) -> float:
        value = pick(flag, var, None)
        if value is None:
            return default
        return value if isinstance(value, float | int) else _duration(f"--{flag} / {var}", str(value))

    external = pick("external_istiod", "EXTERNAL_ISTIOD", False)
    jitter = pick("root_cert_jitter", "CITADEL_ENABLE_JITTER_FOR_ROOT_CERT_ROTATOR", True)
    grace_raw = pick("root_cert_grace_percent", "CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE", 20)
    try:
        grace = int(str(grace_raw))
    except ValueError as e:
        raise errors.OptionsError(
            f"CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE: not an integer: {grace_raw!r}"
        ) from e
    if not 0 < grace <= 100:
        raise errors.OptionsError("CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE: must be in 1..100")
    leader = pick("enable_leader_election", "ENABLE_LEADER_ELECTION", True)
    plaintext = flags.get("xds_plaintext_port", 15010)
    opts = Options(
        kubeconfig=str(flags["kubeconfig"]) if flags.get("kubeconfig") else None,
        context=str(flags["context"]) if flags.get("context") else None,
        cluster_id=str(pick("cluster_id", "CLUSTER_ID", "Kubernetes")),
        network=str(pick("network", "NETWORK", "")),
        mesh_id=str(pick("mesh_id", "MESH_ID", "")),
        trust_domain=str(pick("trust_domain", "TRUST_DOMAIN", "cluster.local")),
        namespace=str(pick("namespace", "POD_NAMESPACE", "istio-system")),
        revision=str(pick("revision", "REVISION", "default")),
        pod_name=str(pick("pod_name", "POD_NAME", "")) or os.uname().nodename,
        # MESHPLANE_LISTEN_ADDRESS: the lab's per-pod address (lab pods share the host's network)
        bind_address=str(pick("bind_address", "MESHPLANE_LISTEN_ADDRESS", "0.0.0.0")),
        xds_plaintext_port=None
        if flags.get("disable_plaintext_xds")
        else _port("--xds-plaintext-port", plaintext),  # type: ignore[arg-type]
        secure_grpc_port=_port("--secure-grpc-port", flags.get("secure_grpc_port", 15012)),  # type: ignore[arg-type]
        monitoring_port=_port("--monitoring-port", flags.get("monitoring_port", 15014)) or 0,  # type: ignore[arg-type]
        webhook_port=_port("--webhook-port", flags.get("webhook_port", 15017)),  # type: ignore[arg-type]
        external_istiod=external if isinstance(external, bool) else _bool("EXTERNAL_ISTIOD", str(external)),
        debounce_after=duration("debounce_after", "PILOT_DEBOUNCE_AFTER", 0.1),
        debounce_max=duration("debounce_max", "PILOT_DEBOUNCE_MAX", 10.0),
        remote_cluster_timeout=duration("remote_cluster_timeout", "PILOT_REMOTE_CLUSTER_TIMEOUT", 30.0),
        resync_period=duration("resync_period", "PILOT_RESYNC_PERIOD", 300.0),
        workload_cert_ttl=duration("workload_cert_ttl", "DEFAULT_WORKLOAD_CERT_TTL", 24 * 3600.0),
        max_workload_cert_ttl=duration("max_workload_cert_ttl", "MAX_WORKLOAD_CERT_TTL", 90 * 24 * 3600.0),
        root_cert_transition=None
        if pick("root_cert_transition", "MESHPLANE_ROOT_CERT_TRANSITION", None) is None
        else duration("root_cert_transition", "MESHPLANE_ROOT_CERT_TRANSITION", 0.0),
        self_signed_ca_cert_ttl=duration(
            "self_signed_ca_cert_ttl", "CITADEL_SELF_SIGNED_CA_CERT_TTL", 3650 * 24 * 3600.0
        ),
        root_cert_check_interval=duration(
            "root_cert_check_interval", "CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL", 3600.0
        ),
        root_cert_grace_percent=grace,
        root_cert_jitter=jitter
        if isinstance(jitter, bool)
        else _bool("CITADEL_ENABLE_JITTER_FOR_ROOT_CERT_ROTATOR", str(jitter)),
        insecure_kubeconfig_options=_list(
            str(pick("", "PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS", ""))
        ),
        custom_hosts=_list(str(pick("", "ISTIOD_CUSTOM_HOST", ""))),
        extra_san=tuple(str(x) for x in (flags.get("extra_san") or ())),  # type: ignore[attr-defined]
        enable_leader_election=leader
        if isinstance(leader, bool)
        else _bool("ENABLE_LEADER_ELECTION", str(leader)),
    )
    if not opts.cluster_id:
        raise errors.OptionsError("--cluster-id / CLUSTER_ID: must not be empty")
    if opts.debounce_after > opts.debounce_max:
        raise errors.OptionsError("PILOT_DEBOUNCE_AFTER must not exceed PILOT_DEBOUNCE_MAX")
    return opts
