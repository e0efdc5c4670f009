"""Errors in Istio networking config (Gateway, VirtualService)."""

from __future__ import annotations

from meshplane import errors


class ConfigError(errors.MeshplaneError, ValueError):
    """An invalid config object; the message names the object and the field path."""

    def __init__(self, ref: str, path: str, problem: str) -> None:
        self.ref = ref  # `Kind namespace/name`
        self.path = path  # `spec.servers[0].port.number`
        self.problem = problem
        super().__init__(f"{ref}: {path}: {problem}" if path else f"{ref}: {problem}")
