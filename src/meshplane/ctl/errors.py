"""Errors of the istioctl-side clients (proxy-status, remote-clusters)."""

from __future__ import annotations

from meshplane import errors


class CtlError(errors.MeshplaneError):
    """Base of every error the ctl package raises."""


class SyncStatusError(CtlError):
    """A discovery server's debug page could not be found, fetched or read (proxy-status, remote-clusters)."""
