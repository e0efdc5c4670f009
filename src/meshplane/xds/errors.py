"""Errors raised while generating xDS resources."""

from __future__ import annotations

from meshplane import errors


class XdsError(errors.MeshplaneError):
    """Base of every error the xds package raises."""


class UnsupportedTypeError(XdsError):
    """The server asked for a resource type no generator serves (e.g. SDS, served by the agent)."""


class ResourceNameError(XdsError, ValueError):
    """A resource name is not one of Istio's forms (`outbound|PORT|SUBSET|HOST`, `inbound|PORT||`, ...)."""
