"""Errors of the service registries (per-cluster, aggregate, multicluster) and the mesh config."""

from __future__ import annotations

from meshplane import errors


class RegistryError(errors.MeshplaneError):
    """Base of every error the registry package raises."""


class MeshConfigError(RegistryError, ValueError):
    """The mesh config cannot be used; the message names the field."""
