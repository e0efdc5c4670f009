"""Errors of the lab: each names what is wrong so a Pod's status or the CLI can show it."""

from __future__ import annotations

from meshplane import errors as meshplane_errors


class LabError(meshplane_errors.MeshplaneError):
    """Base of the lab's errors."""


class PodSpecError(LabError):
    """A Pod's spec cannot be run as written (the message is shown in the container's status)."""


class ContainerConfigError(PodSpecError):
    """A container's env or volumes refer to something missing (Kubernetes' CreateContainerConfigError)."""


class UnknownImage(PodSpecError):
    """The image is not in the lab's image table (shown as ErrImagePull / ImagePullBackOff)."""


class VolumeNotReady(LabError):
    """A volume's source (ConfigMap, Secret, token) is not available yet; the pod waits for it."""


class AddressExhausted(LabError):
    """No free address left in a range (pod IPs or LoadBalancer addresses)."""


class LaunchError(LabError):
    """A background process of the lab did not start (the message names its log)."""


class CurlUsage(LabError, ValueError):
    """The command is not a curl invocation the lab supports (exit code 2)."""


class RangeError(LabError, ValueError):
    """An address range of the lab cannot be used (not IPv4, overlapping, routed elsewhere)."""


class NetworkCommandError(LabError):
    """An `ip` / `iptables` command of the lab's pod network failed (the message names it)."""


class LedgerError(LabError):
    """The network ledger is unreadable, or clean-up could not remove what it records."""


class InterfaceNameError(LabError, ValueError):
    """A network interface name the lab would make is invalid (empty, too long, bad characters)."""
