"""Random loopback addresses per test, so parallel tests (and the lab) never share an address:port."""

from __future__ import annotations

import itertools
import random


class Loopback:
    def __init__(self) -> None:
        self._base = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}."
        self._next = itertools.count(1)

    def ip(self) -> str:
        return self._base + str(next(self._next))
