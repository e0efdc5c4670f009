"""Facts about a proxy that generators depend on, read from its node metadata.

`MESHPLANE_LOCALHOST` is the address the proxy's own app listens on and its outbound listener binds
to. Real pods use 127.0.0.1 (the default); lab pods share the host's network, so each gets its own
loopback address, which the agent passes from env `ISTIO_META_MESHPLANE_LOCALHOST` into the node
metadata. `MESHPLANE_SDS: "false"` marks a proxy bootstrapped without an SDS socket: it gets no
config that needs the workload certificate (Istio proxies always have SDS, so absent means yes).

`INTERCEPTION_MODE` (Istio's key; the injector sets `REDIRECT`) picks the sidecar's layout:

| value               | layout                                                                      |
|---------------------|-----------------------------------------------------------------------------|
| `REDIRECT` (absent) | Istio's transparent layout (xds/transparent.py): iptables sends the pod's   |
|                     | traffic to virtualOutbound 15001 and virtualInbound 15006                   |
| `NONE`              | explicit proxy (xds/lds.py): one HTTP proxy listener at LOCALHOST:15001 and |
|                     | one listener per own port on the pod IP; nothing is captured                |
| `TPROXY`            | not implemented (istio-iptables refuses it); logged, served as REDIRECT     |
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from meshplane.model import proxy as proxy_model
from meshplane.model.ids import ClusterId

log = logging.getLogger(__name__)

LOCALHOST_KEY = "MESHPLANE_LOCALHOST"
SDS_KEY = "MESHPLANE_SDS"
DEFAULT_LOCALHOST = "127.0.0.1"
INTERCEPTION_KEY = "INTERCEPTION_MODE"


class Interception(StrEnum):
    REDIRECT = "REDIRECT"
    NONE = "NONE"


@functools.lru_cache(maxsize=4096)
def _normalized_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def localhost(proxy: proxy_model.Proxy) -> str:
    value = proxy.metadata.get(LOCALHOST_KEY)
    if value is None or value == "":
        return DEFAULT_LOCALHOST
    ip = _normalized_ip(str(value))
    if ip is None:
        log.warning(
            "ignoring invalid %s=%r, using %s proxy=%s cluster=%s",
            LOCALHOST_KEY,
            str(value)[:60],
            DEFAULT_LOCALHOST,
            proxy.id,
            proxy.cluster_id,
        )
        return DEFAULT_LOCALHOST
    return ip


def has_sds(proxy: proxy_model.Proxy) -> bool:
    return str(proxy.metadata.get(SDS_KEY, "true")).lower() != "false"


@functools.lru_cache(maxsize=64)
def _interception(value: str) -> Interception:
    if value in ("", Interception.REDIRECT):
        return Interception.REDIRECT
    if value == Interception.NONE:
        return Interception.NONE
    log.warning(
        "%s=%r is not implemented (REDIRECT and NONE are); serving the REDIRECT layout",
        INTERCEPTION_KEY,
        value[:40],
    )
    return Interception.REDIRECT


def interception(proxy: proxy_model.Proxy) -> Interception:
    return _interception(str(proxy.metadata.get(INTERCEPTION_KEY) or ""))


def labels_key(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


@dataclass(frozen=True, slots=True)
class InboundView:
    """What a sidecar's inbound side (own service ports, inbound clusters/listeners) depends on."""

    cluster_id: ClusterId
    ips: tuple[str, ...]
    localhost: str
    sds: bool
    interception: Interception = Interception.REDIRECT


def inbound_view(proxy: proxy_model.Proxy) -> InboundView:
    return InboundView(
        proxy.cluster_id, proxy.ip_addresses, localhost(proxy), has_sds(proxy), interception(proxy)
    )
