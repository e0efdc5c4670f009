"""Errors of the agent layer; library errors are wrapped with `raise ... from`."""

from __future__ import annotations

from meshplane import errors


class AgentError(errors.MeshplaneError):
    """Base of every error the agent raises."""


class BootstrapError(AgentError, ValueError):
    """The bootstrap cannot be written from these flags, environment or files; says which."""


class ConfigError(AgentError):
    """The pod's environment or files do not describe a usable proxy (bad env, bad PROXY_CONFIG)."""


class CredentialError(AgentError):
    """A local credential (service-account token, root cert file) is missing or unreadable."""


class CertificateError(AgentError):
    """The CA refused the request or returned a chain the agent cannot use."""


class UpstreamError(AgentError):
    """The discovery address could not be reached (connect, TLS or name resolution)."""
