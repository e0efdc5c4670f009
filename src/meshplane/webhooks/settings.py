"""What the injector renders sidecars with: the primary's values, as in Istio's `istio-sidecar-injector`
ConfigMap (key `values`, mounted by the istiod Deployment at /var/lib/istio/inject/values)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshplane.runtime import jsonobj, podroot
from meshplane.webhooks import errors

VALUES_FILE = "/var/lib/istio/inject/values"
DEFAULT_CLUSTER_ID = "Kubernetes"


@dataclass(frozen=True, slots=True)
class InjectionSettings:
    proxy_image: str
    cluster_name: str = ""  # "" → ISTIO_META_CLUSTER_ID defaults to Kubernetes and no override
    network: str = ""
    mesh_id: str = ""
    trust_domain: str = "cluster.local"
    istio_namespace: str = "istio-system"
    revision: str = ""
    discovery_address: str = ""  # default istiod[-rev].NS.svc:15012
    ca_address: str = ""  # default: the discovery address
    cluster_domain: str = "cluster.local"
    token_audience: str = "istio-ca"
    image_pull_policy: str = ""
    image_pull_secrets: tuple[str, ...] = ()
    proxy_resources: Mapping[str, Any] | None = None
    log_level: str = "default:info"
    proxy_log_level: str = "warning"
    proxy_component_log_level: str = "misc:error"
    status_port: int = 15020
    namespaces_by_default: bool = False

    @property
    def istiod_address(self) -> str:
        if self.discovery_address:
            return self.discovery_address
        name = f"istiod-{self.revision}" if self.revision else "istiod"
        return f"{name}.{self.istio_namespace}.svc:15012"

    @property
    def proxy_version(self) -> str:
        """The proxy image's tag ("" without one): what the image's ISTIO_META_ISTIO_VERSION says in
        Istio's own proxyv2 (pilot/docker/Dockerfile.proxyv2 sets it from the build's version)."""
        name = self.proxy_image.split("@", 1)[0].rsplit("/", 1)[-1]
        return name.split(":", 1)[1] if ":" in name else ""

    @property
    def ca_addr(self) -> str:
        return self.ca_address or self.istiod_address

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> InjectionSettings:
        """From the injector values document the installer renders (`installer.pilot.injector_values`)."""
        glob = values.get("global")
        if not isinstance(glob, Mapping):
            raise errors.WebhookError("injector values have no 'global' mapping")

        def s(m: Any, key: str, default: str = "") -> str:
            v = m.get(key) if isinstance(m, Mapping) else None
            if v is None or v == "":
                return default
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                raise errors.WebhookError(f"injector values: {key} must be a string, got {type(v).__name__}")
            return str(v)

        proxy = jsonobj.as_mapping(glob.get("proxy"))
        hub, tag = s(glob, "hub"), s(glob, "tag")
        image = s(proxy, "image", "proxyv2")
        if "/" not in image:
            if not hub or not tag:
                raise errors.WebhookError("injector values: global.hub and global.tag are required")
            image = f"{hub}/{image}:{tag}"
        multi = jsonobj.as_mapping(glob.get("multiCluster"))
        sds = jsonobj.as_mapping(glob.get("sds"))
        token = jsonobj.as_mapping(sds.get("token"))
        logging_ = jsonobj.as_mapping(glob.get("logging"))
        webhook = values.get("sidecarInjectorWebhook")
        secrets = glob.get("imagePullSecrets") or ()
        if not isinstance(secrets, list | tuple) or not all(isinstance(x, str) for x in secrets):
            raise errors.WebhookError("injector values: global.imagePullSecrets must be a list of names")
        resources = proxy.get("resources")
        status_port = proxy.get("statusPort", 15020)
        if not isinstance(status_port, int) or isinstance(status_port, bool):
            raise errors.WebhookError("injector values: global.proxy.statusPort must be an integer")
        return cls(
            proxy_image=image,
            cluster_name=s(multi, "clusterName"),
            network=s(glob, "network"),
            mesh_id=s(glob, "meshID"),
            trust_domain=s(glob, "trustDomain", "cluster.local"),
            istio_namespace=s(glob, "istioNamespace", "istio-system"),
            revision=s(values, "revision"),
            discovery_address=s(values, "discoveryAddress"),
            ca_address=s(glob, "caAddress"),
            cluster_domain=s(proxy, "clusterDomain", "cluster.local"),
            token_audience=s(token, "aud", "istio-ca"),
            image_pull_policy=s(glob, "imagePullPolicy"),
            image_pull_secrets=tuple(secrets),
            proxy_resources=resources if isinstance(resources, Mapping) else None,
            log_level=s(logging_, "level", "default:info"),
            proxy_log_level=s(proxy, "logLevel", "warning"),
            proxy_component_log_level=s(proxy, "componentLogLevel", "misc:error"),
            status_port=status_port,
            namespaces_by_default=bool(
                isinstance(webhook, Mapping) and webhook.get("enableNamespacesByDefault") is True
            ),
        )


def load_values_file(path: str | Path = VALUES_FILE) -> InjectionSettings:
    """Read the mounted injector values (through the pod root, so lab pods find theirs)."""
    p = podroot.path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise errors.WebhookError(f"cannot read injector values {p}: {e.strerror}") from e
    except ValueError as e:
        raise errors.WebhookError(f"injector values {p} are not JSON: {e}") from e
    if not isinstance(data, Mapping):
        raise errors.WebhookError(f"injector values {p} are not a JSON object")
    return InjectionSettings.from_values(data)
