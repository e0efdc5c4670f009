import pytest

from meshplane.runtime import durations

# (text, seconds by Go's time.ParseDuration or None if Go rejects it, seconds by `parse`)
CASES: list[tuple[str, float | None, float | None]] = [
    ("100ms", 0.1, 0.1),
    ("10s", 10, 10),
    ("5m", 300, 300),
    ("1h30m", 5400, 5400),
    ("24h", 86400, 86400),
    ("1.5s", 1.5, 1.5),
    ("1h2m3.5s", 3723.5, 3723.5),
    ("2m3s", 123, 123),
    ("1.5us", 1.5e-6, 1.5e-6),
    ("1.5µs", 1.5e-6, 1.5e-6),
    ("1.5μs", 1.5e-6, 1.5e-6),
    ("7ns", 7e-9, 7e-9),
    ("1.5ns", 1e-9, 1e-9),  # Go truncates below a nanosecond
    (".5s", 0.5, 0.5),
    ("5.s", 5, 5),
    ("1h1h", 7200, 7200),
    ("-3s", -3, -3),
    ("+3s", 3, 3),
    ("-1.5h", -5400, -5400),
    ("0", 0, 0),
    ("-0", 0, 0),
    ("+0", 0, 0),
    (" 10s ", 10, 10),
    ("2562047h47m16.854775807s", 9223372036.854775807, 9223372036.854775807),
    ("2562048h", None, None),  # past Go's int64 nanoseconds
    ("30", None, 30),  # a bare number is seconds for `parse` only
    ("2.5", None, 2.5),
    ("30.", None, 30),
    (".5", None, 0.5),
    ("", None, None),
    ("   ", None, None),
    ("-", None, None),
    ("s", None, None),
    ("h", None, None),
    ("ms", None, None),
    ("10x", None, None),
    ("abc", None, None),
    ("1h 30m", None, None),
    ("s5", None, None),
    ("5x", None, None),
    ("1.2.3s", None, None),
    (".s", None, None),
    ("--1s", None, None),
    ("1d", None, None),
    ("1e3s", None, None),
    ("-30", None, None),
    ("١s", None, None),  # only ASCII digits
]


@pytest.mark.parametrize(("text", "go", "lenient"), CASES)
def test_parse(text: str, go: float | None, lenient: float | None) -> None:
    for parse, want in ((durations.parse_go, go), (durations.parse, lenient)):
        if want is None:
            with pytest.raises(ValueError, match="duration"):
                parse(text)
        else:
            assert parse(text) == pytest.approx(want, rel=1e-12, abs=0)
