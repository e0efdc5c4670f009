"""The lab's image table: which local program a container image stands for.

The lab has no container runtime, so an image is a name for one of meshplane's own programs:

| image                                              | runs                                              |
|----------------------------------------------------|---------------------------------------------------|
| `*/pilot:*` (the control plane)                    | `python -m meshplane <args>` (args: `discovery …`) |
| `*/proxyv2:*` (the proxy)                          | `python -m meshplane agent <args>` (`proxy …`)    |
| helloworld v1/v2 (registry.istio.io, docker.io)    | our helloworld app (SERVICE_VERSION from the tag) |
| curlimages/curl, the sleep sample's images         | an idle process (what `/bin/sleep infinity` does) |

The container's command is never executed on the host: only args of the control-plane and proxy
images are passed on (to meshplane's own CLI). An image not in the table is reported on the Pod as
`ErrImagePull`/`ImagePullBackOff` with a message naming the image.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from meshplane.lab import errors


class Program(StrEnum):
    CONTROL_PLANE = "control-plane"
    PROXY = "proxy"
    HELLOWORLD = "helloworld"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class Entry:
    patterns: tuple[str, ...]  # fnmatch patterns over normalized references
    program: Program
    env: Mapping[str, str] = field(default_factory=dict)  # the image's own ENV (the spec overrides it)


TABLE: tuple[Entry, ...] = (
    Entry(("*/pilot:*", "*/pilot"), Program.CONTROL_PLANE),
    Entry(("*/proxyv2:*", "*/proxyv2"), Program.PROXY),
    Entry(
        (
            "registry.istio.io/release/examples-helloworld-v1:*",
            "registry.istio.io/release/examples-helloworld-v1",
            "docker.io/istio/examples-helloworld-v1:*",
            "docker.io/istio/examples-helloworld-v1",
        ),
        Program.HELLOWORLD,
        {"SERVICE_VERSION": "v1"},
    ),
    Entry(
        (
            "registry.istio.io/release/examples-helloworld-v2:*",
            "registry.istio.io/release/examples-helloworld-v2",
            "docker.io/istio/examples-helloworld-v2:*",
            "docker.io/istio/examples-helloworld-v2",
        ),
        Program.HELLOWORLD,
        {"SERVICE_VERSION": "v2"},
    ),
    Entry(
        (
            "docker.io/curlimages/curl:*",
            "docker.io/curlimages/curl",
            "docker.io/governmentpaas/curl-ssl:*",
            "docker.io/governmentpaas/curl-ssl",
            "docker.io/tutum/curl:*",
            "docker.io/tutum/curl",
        ),
        Program.IDLE,
    ),
)


def normalize(image: str) -> str:
    """Docker's reference rules: `curlimages/curl` → `docker.io/curlimages/curl`, `busybox` →
    `docker.io/library/busybox`; a digest is dropped."""
    ref = image.strip().split("@", 1)[0]
    if not ref:
        return ref
    first, _, rest = ref.partition("/")
    if not rest:
        return f"docker.io/library/{ref}"
    if "." in first or ":" in first or first == "localhost":
        return ref
    return f"docker.io/{ref}"


@dataclass(frozen=True, slots=True)
class Launch:
    """What to run for a container: argv and the image's default env."""

    program: Program
    argv: tuple[str, ...]
    env: Mapping[str, str]


def find(image: str, table: Sequence[Entry] = TABLE) -> Entry | None:
    ref = normalize(image)
    for entry in table:
        if any(fnmatch.fnmatchcase(ref, p) for p in entry.patterns):
            return entry
    return None


def launch_for(
    image: str, args: Sequence[str], python: str = sys.executable, table: Sequence[Entry] = TABLE
) -> Launch:
    """The local command for a container of `image` with (already expanded) `args`.

    Raises UnknownImage for an image the table lacks."""
    entry = find(image, table)
    if entry is None:
        raise errors.UnknownImage(
            f'image "{image}" is not in the lab\'s image table; the lab runs the control plane '
            "(*/pilot:*), the proxy (*/proxyv2:*), helloworld v1/v2 and curl/sleep images"
        )
    base = (python, "-m")
    if entry.program is Program.CONTROL_PLANE:
        argv = (*base, "meshplane", *args)
    elif entry.program is Program.PROXY:
        argv = (*base, "meshplane", "agent", *args)
    elif entry.program is Program.HELLOWORLD:
        argv = (*base, "meshplane.lab.apps", "helloworld")
    else:
        argv = (*base, "meshplane.lab.apps", "idle")
    return Launch(entry.program, argv, dict(entry.env))
