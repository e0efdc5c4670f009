"""The settings of a lab node's kubelet: where it runs pods, their address ranges, its timings.

Shared by `kubelet` (which owns them) and `podworker` (which reads them through `PodHost`).
`network` set = netns mode (each pod in its own network namespace, `podnet`), else loopback mode.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from meshplane.lab import kubeapi
from meshplane.lab.controllers import scheduler
from meshplane.lab.node import podnet


@dataclass(frozen=True, slots=True)
class Settings:
    node: scheduler.NodeInfo
    root: Path  # the node runtime's folder; pods live under root/pods
    pod_cidr: str
    local_cidr: str
    api_server: kubeapi.Server
    hosts_file: Path
    python: str = sys.executable
    backoff_initial: float = 1.0  # container restart backoff (Kubernetes: 10 s … 5 min)
    backoff_max: float = 60.0
    probe_until_ready: float = 1.0  # probe at least this often until the first success
    termination_delay: float = 1.0  # after the endpoint is published terminating, before SIGTERM
    shutdown_grace: float = 5.0  # grace per pod when the node runtime itself stops
    network: podnet.PodNetworks | None = None  # netns mode: pods get their own network namespaces
