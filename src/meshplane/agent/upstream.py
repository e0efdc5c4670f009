"""How the agent reaches the discovery address (xDS and CA): TLS, name resolution, call metadata.

Each call reads the token file again (the kubelet rotates the projected token) and sends it as
`authorization: Bearer <token>` with the pod's cluster in `clusterid` (Istio sends `ClusterID`;
gRPC metadata keys are lower case on the wire). The server's certificate is verified against the
mounted root cert, with the discovery host (or ISTIOD_SAN) as SNI and verified name.

Names are looked up first in the pod's hosts file (`/etc/hosts`, resolved through the pod root),
then by gRPC's own DNS resolver. In a real pod both are the same thing; a lab pod has no network
namespace, so the lab writes the pod's hosts file with the cluster's Service names.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc

from meshplane.agent import config, errors
from meshplane.runtime.logging import kv

log = logging.getLogger(__name__)

_MAX_TOKEN = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upstream:
    address: str  # host:port, e.g. istiod.istio-system.svc:15012
    cluster_id: str
    token_path: Path
    root_cert_path: Path
    hosts_path: Path
    tls: bool = True
    server_name: str = ""  # SNI and verified name; default: the address's host

    @property
    def verified_name(self) -> str:
        return self.server_name or self.host

    @property
    def host(self) -> str:
        return config.split_host_port(self.address)[0]

    @property
    def port(self) -> int:
        return config.split_host_port(self.address)[1]


def read_token(path: Path) -> str:
    """The current service-account token; its value is never logged."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise errors.CredentialError(f"cannot read token file {path}: {e.strerror}") from e
    if len(raw) > _MAX_TOKEN:
        raise errors.CredentialError(f"token file {path} is larger than {_MAX_TOKEN} bytes")
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError as e:
        raise errors.CredentialError(f"token file {path} is not ASCII") from e
    if not token or any(c.isspace() or not c.isprintable() for c in token):
        raise errors.CredentialError(f"token file {path} is empty or not a single token")
    return token


def call_metadata(upstream: Upstream) -> tuple[tuple[str, str], ...]:
    return (
        ("authorization", f"Bearer {read_token(upstream.token_path)}"),
        ("clusterid", upstream.cluster_id),
    )


def lookup_hosts(hosts_path: Path, host: str) -> str | None:
    """First address for `host` in an /etc/hosts-format file, or None."""
    try:
        text = hosts_path.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or host not in fields[1:]:
            continue
        try:
            return str(ipaddress.ip_address(fields[0]))
        except ValueError:
            continue
    return None


def grpc_target(upstream: Upstream) -> str:
    host, port = upstream.host, upstream.port
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        found = lookup_hosts(upstream.hosts_path, host)
        if found is None:
            return f"dns:///{host}:{port}"
        ip = ipaddress.ip_address(found)
    return f"ipv6:[{ip}]:{port}" if ip.version == 6 else f"ipv4:{ip}:{port}"


def dial(upstream: Upstream) -> grpc.aio.Channel:
    """A new channel to the discovery address (TLS verified against the root cert file)."""
    target = grpc_target(upstream)
    options: list[tuple[str, str | int]] = [
        # gRPC requires the call's authority to match the verified server name
        ("grpc.default_authority", f"{upstream.verified_name}:{upstream.port}"),
        ("grpc.max_receive_message_length", -1),  # full pushes can be large (the server sends any size)
    ]
    if not upstream.tls:
        return grpc.aio.insecure_channel(target, options=options)
    try:
        root = upstream.root_cert_path.read_bytes()
    except OSError as e:
        raise errors.CredentialError(f"cannot read root cert {upstream.root_cert_path}: {e.strerror}") from e
    if b"-----BEGIN CERTIFICATE-----" not in root:
        raise errors.CredentialError(f"root cert {upstream.root_cert_path} holds no PEM certificate")
    options.append(("grpc.ssl_target_name_override", upstream.verified_name))
    log.debug("dialing discovery %s", kv(address=upstream.address, target=target))
    return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root), options)


async def connect(upstream: Upstream, connect_timeout: float) -> grpc.aio.Channel:
    """A channel that has completed its TCP and TLS handshake, or UpstreamError.

    Fails as soon as the first attempt fails (refused, TLS error) instead of letting gRPC retry
    until the deadline: the callers have their own backoff.
    """
    channel = dial(upstream)
    try:
        async with asyncio.timeout(connect_timeout):
            state = channel.get_state(try_to_connect=True)
            while state is not grpc.ChannelConnectivity.READY:
                if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                    raise errors.UpstreamError(f"cannot connect to {upstream.address}")
                await channel.wait_for_state_change(state)
                state = channel.get_state(try_to_connect=True)
    except TimeoutError as e:
        await channel.close()
        raise errors.UpstreamError(f"{upstream.address} not reachable within {connect_timeout:g}s") from e
    except BaseException:
        await channel.close()
        raise
    return channel
