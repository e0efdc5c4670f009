"""Installer errors: every one carries a message that names what is wrong and where."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshplane import errors


class InstallError(errors.MeshplaneError):
    """Base of everything the installer raises on purpose."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in an IstioOperator input, located by its path (`spec.values.global.network`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(InstallError):
    """The install input is invalid; nothing has been applied."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class ClusterError(InstallError):
    """The cluster could not be reached or refused a request."""


class ReadinessTimeout(InstallError):
    """What was applied did not become ready in time."""

    def __init__(self, timeout: float, pending: Sequence[str]) -> None:
        self.pending = tuple(pending)
        super().__init__(
            f"timed out after {timeout:g}s waiting for resources to become ready: " + ", ".join(self.pending)
        )


class ImagePullError(InstallError):
    """A Deployment's pods cannot get their image: waiting longer will not make them ready."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "the cluster cannot pull the images: "
            + "; ".join(self.problems)
            + "\n(build them with `make images` and load or push them, then pass the line it prints, "
            "`--set values.global.hub=... --set values.global.tag=...`: README, 'Images for real clusters')"
        )


class RemoteSecretError(InstallError):
    """create-remote-secret could not produce a secret."""
