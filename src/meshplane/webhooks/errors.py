"""Webhook errors."""

from __future__ import annotations

from meshplane import errors


class WebhookError(errors.MeshplaneError):
    """Base of the webhooks package's errors."""


class BadReview(WebhookError):
    """The request is not an AdmissionReview this webhook can answer (the message says why)."""
