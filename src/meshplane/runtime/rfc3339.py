"""RFC 3339 times as Kubernetes writes them (metav1.Time): `2006-01-02T15:04:05Z`, whole seconds, UTC."""

from __future__ import annotations

import datetime as dt
import math
import re
import time

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def format(ts: float) -> str:
    """Unix time `ts` as metav1.Time; the fraction of a second is dropped (as Go's RFC3339 does)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.floor(ts)))


def parse(text: str) -> float:
    """An RFC 3339 date-time (any fraction of a second, `Z` or a numeric offset) to a Unix time.

    Raises ValueError naming the text when it is not one."""
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 time (want e.g. 2006-01-02T15:04:05Z): {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if m.group(8):
        tz = dt.UTC
    else:
        offset = dt.timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        tz = dt.timezone(-offset if m.group(9) == "-" else offset)
    try:
        when = dt.datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError as e:
        raise ValueError(f"not an RFC 3339 time ({e}): {text!r}") from None
    return when.timestamp() + (float(m.group(7)) if m.group(7) else 0.0)
