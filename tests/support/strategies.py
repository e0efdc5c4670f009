"""Hypothesis strategies shared by fuzz tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

SCALARS = st.none() | st.booleans() | st.integers(-5, 300) | st.text(max_size=8)


def json_values(scalars: st.SearchStrategy[Any] = SCALARS, *, max_leaves: int = 15) -> st.SearchStrategy[Any]:
    """Any small JSON document built from `scalars`: what a junk file or a junk field may hold."""
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=max_leaves,
    )
