"""Errors of the security layer; each maps to one gRPC status in the certificate service."""

from __future__ import annotations

from meshplane import errors


class SecurityError(errors.MeshplaneError):
    """Base class: the message names the reason and never contains a token or key."""


class CaMaterialError(SecurityError):
    """CA key material (cacerts / istio-ca-secret) is missing, malformed or inconsistent."""


class CsrError(SecurityError):
    """The CSR cannot be parsed, its signature is bad, or its key is unacceptable."""


class TtlError(SecurityError):
    """The requested validity exceeds the CA's maximum (Istio's TTLError)."""


class AuthenticationError(SecurityError):
    """The caller could not be authenticated (no/invalid/expired token, unknown cluster, ...)."""


class PermissionDenied(SecurityError):
    """The caller is authenticated but asks for something it is not allowed (another identity)."""


class ReviewerUnavailable(AuthenticationError):
    """The TokenReview could not be made (API server unreachable or refused the reviewer)."""
