"""Diff hunks are found in time linear in the file, with the same answers as before.

Issue 14 item 17 / issue 20: the hunk search compared every file position with
every hunk line, so a 2,000-line hunk against a 100,000-line file of similar
lines took 10-30 s with the apply lock held. It is now a Knuth-Morris-Pratt
search over lines; the property test holds it to the old line-by-line search.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muxlang.apply import EditCheckError, execute_apply, parse_edits, plan_changes
from muxlang.apply.changes import _count, _find, _split
from tests.apply.apply_support import make_request
from tests.reliability.rel_support import time_bound


def naive_find(lines: list[str], old: list[str], position: int, expected: int) -> int | None:
    """The search as it was: every position, nearest to ``expected``, earlier on a tie."""
    if not old:
        return min(max(expected, position), len(lines))
    best = None
    for at in range(position, len(lines) - len(old) + 1):
        if lines[at : at + len(old)] == old:
            if best is None or abs(at - expected) < abs(best - expected):
                best = at
            elif at > expected:
                break
    return best


WORDS = st.sampled_from(["a", "b", "", "a "])


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(WORDS, max_size=30),
    old=st.lists(WORDS, max_size=5),
    position=st.integers(0, 32),
    expected=st.integers(0, 32),
)
def test_the_indexed_search_finds_what_the_old_one_found(
    lines: list[str], old: list[str], position: int, expected: int
) -> None:
    text = "".join(f"{line}\n" for line in lines)
    split = _split(text)
    assert _find(split, old, position, expected) == naive_find(lines, old, position, expected)
    if old:
        naive_count = sum(
            lines[at : at + len(old)] == old for at in range(position, len(lines) - len(old) + 1)
        )
        assert _count(split, old, position) == naive_count


def big_diff(numbers: bool) -> str:
    body = [" x = 1"] * 1999 + ["-y = 2", "+y = 3"]
    header = "@@ -48002,2000 +48002,2000 @@" if numbers else "@@"
    return "--- a/big.py\n+++ b/big.py\n" + header + "\n" + "\n".join(body) + "\n"


@pytest.mark.parametrize("numbers", [True, False])
def test_a_2000_line_hunk_that_does_not_match_a_100k_line_file_fails_promptly(
    tmp_path: Path, numbers: bool
) -> None:
    (tmp_path / "big.py").write_text("x = 1\n" * 100_000)
    with (
        time_bound(5, "a 2,000-line hunk against 100,000 lines"),  # was 10-30 s
        pytest.raises(EditCheckError, match="does not match the file"),
    ):
        plan_changes(tmp_path, parse_edits(big_diff(numbers)))


async def test_a_2000_line_hunk_is_applied_in_a_100k_line_file(tmp_path: Path) -> None:
    lines = ["x = 1\n"] * 100_000
    lines[50_000] = "y = 2\n"
    (tmp_path / "big.py").write_text("".join(lines))
    request, _ = make_request(tmp_path, big_diff(True))
    with time_bound(5, "a 2,000-line hunk applied in 100,000 lines"):
        result = await execute_apply(request)
    assert result.success, result.error
    text = (tmp_path / "big.py").read_text().splitlines()
    assert text[50_000] == "y = 3"
    assert text.count("y = 3") == 1
    assert len(text) == 100_000
    assert json.dumps(result.files) == '["big.py"]'
