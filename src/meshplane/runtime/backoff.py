"""Capped exponential backoff with jitter, for reconnect loops."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float = 0.1
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2
    _next: float = field(default=0.0, init=False)

    def next(self) -> float:
        """Return the next delay and grow it for the following call."""
        base = self._next or self.initial
        self._next = min(base * self.factor, self.maximum)
        return base * (1 + random.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self._next = 0.0
