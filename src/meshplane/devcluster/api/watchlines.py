"""Encoded watch lines shared by every watcher of a cluster."""

from __future__ import annotations

from collections import OrderedDict

from meshplane.devcluster.api import bodies
from meshplane.runtime.jsonobj import Obj


def encode(etype: str, obj: Obj) -> bytes:
    """One watch event as the API server streams it: a JSON object and a newline."""
    return bodies.dumps({"type": etype, "object": obj}) + b"\n"


class LineCache:
    """Encoded watch lines shared by every watcher of a cluster: one JSON encoding per event and
    version instead of one per watcher. An RV names one object state, so (rv, type, apiVersion) is
    a sufficient key."""

    def __init__(self, size: int = 4096) -> None:
        self._lines: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._size = size

    def get(self, etype: str, obj: Obj) -> bytes:
        key = (str(obj["metadata"].get("resourceVersion", "")), etype, str(obj.get("apiVersion", "")))
        encoded = self._lines.get(key)
        if encoded is None:
            encoded = encode(etype, obj)
            self._lines[key] = encoded
            if len(self._lines) > self._size:
                self._lines.popitem(last=False)
        return encoded
