"""Go-style durations ("100ms", "10s", "1h30m"), as Istio's env variables and flags take them.

`parse_go` is Go's `time.ParseDuration`: an optional sign, then one or more decimal numbers each
with a unit (ns, us, µs, ms, s, m, h), e.g. "1h2m3.5s", "-1.5us"; "0" alone needs no unit; the
total must fit Go's int64 nanoseconds. `parse` also takes a bare number as seconds. Both return
seconds and raise ValueError naming the bad text; callers map it to their own error.
"""

from __future__ import annotations

from fractions import Fraction

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX_NS = (1 << 63) - 1
_DIGITS = "0123456789"


def parse(value: str) -> float:
    """Seconds in `value`: a Go duration, or a bare (unsigned) number of seconds."""
    text = value.strip()
    if _is_number(text):
        return float(text)
    return parse_go(value)


def parse_go(value: str) -> float:
    """Seconds in `value`, by Go's time.ParseDuration grammar (surrounding whitespace ignored)."""
    text = value.strip()
    neg = text[:1] == "-"
    if text[:1] in ("-", "+"):
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f"invalid duration {value!r} (expected e.g. 100ms, 10s, 1h30m)")
    total = 0
    pos = 0
    while pos < len(text):
        start = pos
        while pos < len(text) and text[pos] in _DIGITS:
            pos += 1
        whole = text[start:pos]
        frac = ""
        if pos < len(text) and text[pos] == ".":
            pos += 1
            frac_start = pos
            while pos < len(text) and text[pos] in _DIGITS:
                pos += 1
            frac = text[frac_start:pos]
        if not whole and not frac:
            raise ValueError(f"invalid duration {value!r} (expected e.g. 100ms, 10s, 1h30m)")
        unit_start = pos
        while pos < len(text) and text[pos] != "." and text[pos] not in _DIGITS:
            pos += 1
        unit = text[unit_start:pos]
        if not unit:
            raise ValueError(f"missing unit in duration {value!r} (expected e.g. 100ms, 10s, 1h30m)")
        scale = _NS_PER_UNIT.get(unit)
        if scale is None:
            raise ValueError(f"unknown unit {unit!r} in duration {value!r} (use ns, us, ms, s, m or h)")
        whole = whole.lstrip("0")[:21]  # longer overflows anyway; keeps int() within its digit limit
        frac = frac[:30]  # digits past the nanosecond do not change the truncated result
        total += int(whole or "0") * scale
        if frac:
            total += int(Fraction(int(frac), 10 ** len(frac)) * scale)  # truncated, as Go does
        if total > _MAX_NS + (1 if neg else 0):
            raise ValueError(f"invalid duration {value!r} (out of range)")
    return (-total if neg else total) / 1e9


def _is_number(text: str) -> bool:
    whole, _, frac = text.partition(".")
    digits = whole + frac
    return bool(digits) and all(c in _DIGITS for c in digits)


def human(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
