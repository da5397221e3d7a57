"""Strict comparison of decoded TOML values, shared by the TOML tests."""

from __future__ import annotations

import math
from datetime import datetime, time
from typing import Any


def assert_same(got: Any, want: Any, where: str = "$") -> None:
    """Equal values of exactly the same types (nan equals nan; tzinfo compared)."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want) or set(got) == set(want), f"{where}: keys differ"
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: lengths differ"
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), f"{where}: {got!r} is not nan"
    elif isinstance(want, datetime | time):
        assert got == want, f"{where}: {got!r} != {want!r}"
        assert got.utcoffset() == want.utcoffset(), f"{where}: offsets differ"
        assert (got.tzinfo is None) == (want.tzinfo is None), f"{where}: tzinfo differs"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"
