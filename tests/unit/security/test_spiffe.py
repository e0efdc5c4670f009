from __future__ import annotations

import pytest

from meshplane.security import spiffe


def test_identity_roundtrip() -> None:
    uri = spiffe.identity("sample", "sleep")
    assert uri == "spiffe://cluster.local/ns/sample/sa/sleep"
    assert spiffe.parse(uri) == spiffe.Identity("cluster.local", "sample", "sleep")
    assert str(spiffe.parse("spiffe://td/ns/a/sa/b")) == "spiffe://td/ns/a/sa/b"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "http://x/ns/a/sa/b",
        "spiffe://td/ns/a",
        "spiffe://td/ns//sa/b",
        "spiffe://td/x/a/sa/b",
        "spiffe://td/ns/a/sa/b/c",
    ],
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="identity"):
        spiffe.parse(bad)
