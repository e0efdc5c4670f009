import pytest

from meshplane.runtime import rfc3339


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0.0, "1970-01-01T00:00:00Z"),
        (1767225600.0, "2026-01-01T00:00:00Z"),
        (1767225600.999, "2026-01-01T00:00:00Z"),  # the fraction is dropped, never rounded up
        (1767225659.5, "2026-01-01T00:00:59Z"),
        (951782400.0, "2000-02-29T00:00:00Z"),
    ],
)
def test_format(ts: float, text: str) -> None:
    assert rfc3339.format(ts) == text


@pytest.mark.parametrize(
    ("text", "ts"),
    [
        ("1970-01-01T00:00:00Z", 0.0),
        ("2026-01-01T00:00:20Z", 1767225620.0),
        ("2026-01-01T00:00:20.250000Z", 1767225620.25),  # MicroTime
        ("2026-01-01T00:00:20.123456789Z", 1767225620.123456789),  # RFC3339Nano
        ("2026-01-01t00:00:20z", 1767225620.0),
        ("2026-01-01T02:00:20+02:00", 1767225620.0),
        ("2025-12-31T23:30:20-00:30", 1767225620.0),
    ],
)
def test_parse(text: str, ts: float) -> None:
    assert rfc3339.parse(text) == pytest.approx(ts, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    ["", "now", "2026-01-01", "2026-01-01T00:00:20", "2026-13-01T00:00:00Z", "2026-01-01T00:00:20Z junk"],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        rfc3339.parse(text)


def test_round_trip() -> None:
    assert rfc3339.parse(rfc3339.format(1767225620.75)) == 1767225620.0
