import pytest

from meshplane.runtime import durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("100ms", 0.1), ("10s", 10), ("5m", 300), ("1h30m", 5400), ("24h", 86400), ("1.5s", 1.5), ("30", 30)],
)
def test_parse(text: str, seconds: float) -> None:
    assert durations.parse(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10x", "abc", "1h 30m", "s"])
def test_parse_rejects_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        durations.parse(text)
