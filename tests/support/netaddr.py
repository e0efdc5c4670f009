"""Loopback addresses and ports for tests: random 127.x addresses per test, so parallel tests (and
the lab) never share an address:port, and free ports on them."""

from __future__ import annotations

import itertools
import random
import socket


class Loopback:
    def __init__(self) -> None:
        self._base = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}."
        self._next = itertools.count(1)

    def ip(self) -> str:
        return self._base + str(next(self._next))


def loopback_host() -> str:
    """A random 127.x address so that parallel tests never share host:port."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at the moment (bound, then released)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
