"""Names of what the lab makes: prefix `mp-`, a short lab id and a short object id.

Interface names are limited by the kernel to 15 characters (IFNAMSIZ - 1); namespace names have no
such limit but carry the same prefix so that two labs (or two test runs) never collide, and a
person reading `ip netns list` sees whose they are."""

from __future__ import annotations

import hashlib
import re
import secrets

from meshplane.lab import errors

PREFIX = "mp-"
IFNAMSIZ = 15
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def new_lab_id() -> str:
    """A short random id for one lab (or one test): 6 hex digits."""
    return secrets.token_hex(3)


def short(key: str, length: int = 6) -> str:
    """A stable short id for `key` (a pod uid, a namespace/name): the first hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:length]


def ifname(name: str) -> str:
    """`name`, checked as a Linux interface name; InterfaceNameError names it when it is not one."""
    if not name or len(name) > IFNAMSIZ:
        raise errors.InterfaceNameError(f"interface name {name!r} must have 1 to {IFNAMSIZ} characters")
    if not _IFNAME.fullmatch(name):
        raise errors.InterfaceNameError(
            f"interface name {name!r} may hold only letters, digits, '_', '.', '-'"
        )
    return name


def lab(lab_id: str) -> str:
    """`lab_id`, checked: 1 to 6 lowercase letters or digits (so every name below fits)."""
    if not re.fullmatch(r"[a-z0-9]{1,6}", lab_id):
        raise errors.InterfaceNameError(f"lab id {lab_id!r} must be 1 to 6 lowercase letters or digits")
    return lab_id


def bridge(lab_id: str, suffix: str = "br") -> str:
    """A bridge of the lab: `mp-LABID-SUFFIX` (`br`, or one per cluster: `b1`, `b2`)."""
    return ifname(f"{PREFIX}{lab(lab_id)}-{suffix}")


def bridges(lab_id: str) -> str:
    """An iptables interface pattern matching every bridge of the lab (`mp-LABID-+`); the pods'
    veths (`mpLABID…`) do not match it."""
    return f"{PREFIX}{lab(lab_id)}-+"


def chain(lab_id: str, what: str) -> str:
    """An iptables chain of the lab: `mp-LABID-WHAT` (iptables allows 28 characters)."""
    name = f"{PREFIX}{lab(lab_id)}-{what}"
    if len(name) > 28 or not _IFNAME.fullmatch(name):
        raise errors.InterfaceNameError(f"iptables chain name {name!r} is not valid (at most 28 characters)")
    return name


def host_veth(lab_id: str, pod_key: str) -> str:
    """The host end of a pod's veth: `mpLABIDPODID` (the pod id is a hash of `pod_key`)."""
    return ifname(f"mp{lab(lab_id)}{short(pod_key, IFNAMSIZ - 2 - len(lab_id))}")


def netns(lab_id: str, pod_key: str) -> str:
    """A pod's network namespace: `mp-LABID-PODID`."""
    return f"{PREFIX}{lab(lab_id)}-{short(pod_key, 10)}"
