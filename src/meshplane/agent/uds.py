"""Unix-socket addresses shared by the agent (grpc.aio, aiohttp) and Envoy (pipe addresses).

A pod's sockets live at fixed in-pod paths (Istio: `/etc/istio/proxy/XDS`,
`/var/run/secrets/workload-spiffe-uds/socket`). In a lab pod those paths sit under the pod root,
which can exceed the kernel's 108-byte limit for socket paths; such a path is replaced by a Linux
abstract socket named after a hash of the path, so it stays unique per pod and needs no file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

# sun_path is 108 bytes including the terminating NUL.
_MAX_PATH = 107


@dataclass(frozen=True, slots=True)
class UdsAddress:
    path: Path  # the intended in-pod (pod-root resolved) location
    abstract: str = ""  # set when the path is too long: the abstract socket's name

    @property
    def grpc_target(self) -> str:
        """For `grpc.aio.server().add_insecure_port` and `grpc.aio.insecure_channel`."""
        return f"unix-abstract:{self.abstract}" if self.abstract else f"unix:{self.path}"

    @property
    def envoy_pipe(self) -> str:
        """For Envoy's `address.pipe.path` (a leading `@` means abstract)."""
        return f"@{self.abstract}" if self.abstract else str(self.path)

    @property
    def socket_path(self) -> str:
        """For Python sockets (aiohttp's UnixConnector): abstract names start with NUL."""
        return f"\0{self.abstract}" if self.abstract else str(self.path)

    def prepare(self) -> None:
        """Create the socket's folder and remove a stale socket file left by a previous run."""
        if self.abstract:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
            self.path.unlink()

    def cleanup(self) -> None:
        if not self.abstract and self.path.is_socket():
            self.path.unlink()


def address(path: Path) -> UdsAddress:
    full = Path(os.path.abspath(path))
    if len(os.fsencode(str(full))) <= _MAX_PATH:
        return UdsAddress(path=full)
    digest = hashlib.sha256(os.fsencode(str(full))).hexdigest()[:24]
    return UdsAddress(path=full, abstract=f"meshplane/{digest}/{full.name}")
