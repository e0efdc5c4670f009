"""Errors of the Kubernetes layer. Library errors are wrapped with `raise … from`."""

from __future__ import annotations


class KubeError(Exception):
    """Base of the kube layer's errors."""


class KubeconfigError(KubeError):
    """A kubeconfig (a file, a context, or a remote secret's value) cannot be used; the message says why."""


class NotSynced(KubeError):
    """An informer has not completed its first list."""
