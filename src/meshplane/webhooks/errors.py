"""Webhook errors."""

from __future__ import annotations


class WebhookError(Exception):
    """Base of the webhooks package's errors."""


class BadReview(WebhookError):
    """The request is not an AdmissionReview this webhook can answer (the message says why)."""


class InjectionError(WebhookError):
    """The pod could not be injected (the message says why); answered with allowed=false."""
