"""Istio host names: wildcard overlap (pkg/config/host/name.go) and `namespace/dnsName` gateway hosts."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LABEL = r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?"
_DNS = re.compile(rf"^(\*|(\*\.)?{_LABEL}(\.{_LABEL})*)$")
_NS = re.compile(r"^(\*|\.|~|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$")


def check_host(name: str) -> str:
    """'' when `name` is a host Istio accepts (`*`, `*.suffix`, or a DNS name), else the problem."""
    if len(name) > 253:
        return f"host {name[:40]!r}... is longer than 253 characters"
    if not _DNS.match(name):
        return f"host {name!r:.80} is not a DNS name (a leading '*' wildcard label is allowed)"
    return ""


def check_gateway_host(text: str) -> str:
    ns, _, dns = text.rpartition("/")
    if "/" in text and not _NS.match(ns):
        return f"namespace part {ns!r:.80} of {text!r:.80} must be '*', '.', '~' or a namespace name"
    return check_host(dns)


def matches(a: str, b: str) -> bool:
    """True when the two names overlap: equal, or one wildcard covers the other (`*` covers all)."""
    if a.startswith("*"):
        if b.startswith("*"):
            sa, sb = a[1:], b[1:]
            return sb.endswith(sa) if len(sa) <= len(sb) else sa.endswith(sb)
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def more_specific(a: str, b: str) -> str:
    """Of two overlapping names, the narrower one (what a route bound to both actually serves)."""
    if a.startswith("*") and not b.startswith("*"):
        return b
    if b.startswith("*") and not a.startswith("*"):
        return a
    return a if len(a) >= len(b) else b


@dataclass(frozen=True, slots=True)
class GatewayHost:
    namespace: str  # "*" any, "." the gateway's own, "~" none, or a namespace
    dns: str

    def admits(self, config_namespace: str, gateway_namespace: str) -> bool:
        if self.namespace == "*":
            return True
        if self.namespace == ".":
            return config_namespace == gateway_namespace
        return self.namespace == config_namespace


def gateway_host(text: str) -> GatewayHost:
    ns, sep, dns = text.rpartition("/")
    return GatewayHost(ns if sep else "*", dns)
