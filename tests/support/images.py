"""Image names as tests read them: the role of each image the installer and the injector put in pod
specs. `<hub>/pilot:<tag>` runs `meshplane discovery`; `<hub>/proxyv2:<tag>` runs the agent
(`proxy sidecar|router`, and `istio-iptables` in the traffic-capture init container). Istio's own
images (`docker.io/istio/pilot:1.2x`, `.../proxyv2:...`) map the same way.
"""

from __future__ import annotations

from meshplane.installer import profiles

PILOT = profiles.PILOT_IMAGE
PROXY = profiles.PROXY_IMAGE


def name(image: str) -> str:
    """The repository's last path element: `docker.io/meshplane/proxyv2:0.1.0` → `proxyv2`."""
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def role(image: str) -> str | None:
    """`pilot` (the control plane), `proxyv2` (the agent) or None for any other image."""
    n = name(image)
    return n if n in (PILOT, PROXY) else None


def default(kind: str, hub: str = profiles.DEFAULT_HUB, tag: str = profiles.DEFAULT_TAG) -> str:
    return f"{hub}/{kind}:{tag}"
