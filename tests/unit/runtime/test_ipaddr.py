from __future__ import annotations

import pytest

from meshplane.runtime import ipaddr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("fd00::5", True),
        ("[::1]", False),  # a URL's bracketed form is not a literal
        ("10.0.0.1:80", False),
        ("10.0.0", False),
        ("256.0.0.1", False),
        ("istiod.istio-system.svc", False),
        ("", False),
    ],
)
def test_is_ip(text: str, expected: bool) -> None:
    assert ipaddr.is_ip(text) is expected
