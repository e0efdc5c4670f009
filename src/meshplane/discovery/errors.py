"""Errors of the control plane's composition root (`meshplane discovery`)."""

from __future__ import annotations

from meshplane import errors


class DiscoveryError(errors.MeshplaneError):
    """Base of every error the discovery package raises."""


class OptionsError(DiscoveryError, ValueError):
    """A flag or env variable has a bad value; the message names it."""
