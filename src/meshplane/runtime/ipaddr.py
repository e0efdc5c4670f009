"""IP address literals: the one check every input validator uses."""

from __future__ import annotations

import ipaddress


def is_ip(text: str) -> bool:
    """True when `text` is an IPv4 or IPv6 address literal (no brackets, no port, no zone)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
