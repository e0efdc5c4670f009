"""Resolve absolute in-pod paths through one pod-root setting.

Lab pods are plain processes without a filesystem namespace, so the lab sets MESHPLANE_POD_ROOT to
the pod's folder and every in-pod path (`/var/run/secrets/...`) is read under it. A real pod never
sets it, and the path is used as is. All of meshplane's code reads in-pod files through `path()`.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "MESHPLANE_POD_ROOT"


def path(in_pod: str | Path) -> Path:
    root = os.environ.get(ENV, "")
    p = Path(in_pod)
    if not root or not p.is_absolute():
        return p
    return Path(root) / p.relative_to("/")
