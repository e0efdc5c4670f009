"""One log line per event, `key=value` context appended, never secrets."""

from __future__ import annotations

import logging
import os
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def setup(level: str | None = None, stream: object = None) -> None:
    """Configure root logging once per process (CLI entry points call this)."""
    lvl = (level or os.environ.get("MESHPLANE_LOG_LEVEL") or "INFO").upper()
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(lvl)
    for noisy in ("httpx", "httpx2", "httpcore", "hpack", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def kv(**fields: object) -> str:
    """Render context as `k=v` pairs for the end of a log line."""
    return " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
