"""The root of meshplane's error tree.

Every package has an `errors.py` whose root error subclasses `MeshplaneError`, and every error
the package raises on purpose subclasses that root:

    MeshplaneError
    ├── agent.errors.AgentError          (BootstrapError, ConfigError, CredentialError, ...)
    ├── ctl.errors.CtlError              (SyncStatusError: proxy-status, remote-clusters)
    ├── discovery.errors.DiscoveryError  (OptionsError)
    ├── installer.errors.InstallError    (ConfigError, ClusterError, ReadinessTimeout, ...)
    ├── kube.errors.KubeError            (KubeconfigError)
    ├── networking.errors.ConfigError
    ├── registry.errors.RegistryError    (MeshConfigError)
    ├── security.errors.SecurityError    (CaMaterialError, AuthenticationError, ...)
    ├── server.errors.ServerError        (StreamRejected, NodeError)
    ├── webhooks.errors.WebhookError     (BadReview)
    ├── xds.errors.XdsError              (UnsupportedTypeError, ResourceNameError)
    ├── devcluster.errors.DevclusterError (ApiError: a Kubernetes Status, TokenError, PatchError, ...)
    └── lab.errors.LabError              (PodSpecError, LaunchError, CurlUsage, ...)

Errors that callers have always caught as `ValueError` keep `ValueError` as a second base. The
CLI catches `MeshplaneError` once and prints `Error: <message>` (exit code 1), so a message must
read well on its own. Library errors are wrapped with `raise ... from`. This module imports
nothing, so every layer may use it.
"""

from __future__ import annotations


class MeshplaneError(Exception):
    """Base of every error meshplane raises on purpose."""
