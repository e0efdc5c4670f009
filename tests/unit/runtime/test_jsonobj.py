from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest

from meshplane.runtime import jsonobj

_D: dict[str, Any] = {"a": 1}
_L: list[Any] = [1]
_M = MappingProxyType({"a": 1})


@pytest.mark.parametrize(
    ("helper", "value", "expected"),
    [
        (jsonobj.as_obj, _D, _D),
        (jsonobj.as_obj, None, {}),
        (jsonobj.as_obj, [], {}),
        (jsonobj.as_obj, "x", {}),
        (jsonobj.as_obj, _M, {}),  # only a real JSON object (dict) is one
        (jsonobj.as_list, _L, _L),
        (jsonobj.as_list, None, []),
        (jsonobj.as_list, {}, []),
        (jsonobj.as_list, (1,), []),
        (jsonobj.as_mapping, _D, _D),
        (jsonobj.as_mapping, _M, _M),
        (jsonobj.as_mapping, None, {}),
        (jsonobj.as_mapping, [("a", 1)], {}),
    ],
)
def test_helpers(helper: Callable[[Any], Any], value: Any, expected: Any) -> None:
    out = helper(value)
    assert out == expected
    if expected in (_D, _L, _M) and out == value:
        assert out is value  # the value itself, not a copy: callers may write through it
