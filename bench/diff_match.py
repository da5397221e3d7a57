"""Apply's diff matching: a 2,000-line hunk against a 100,000-line file.

What is timed is ``muxlang.apply.plan_changes`` (parse the unified diff, find
each hunk in the file, build the new text: what an apply step does with the
tree lock held) on a file in the repository of a temporary directory, for the
worst case of the old line-by-line search: a file of 100,000 identical lines
and a hunk of 1,999 of those lines plus one that differs, so every position
matches for almost 2,000 lines before failing. Three cases: the hunk's last
line is nowhere (``no_match``), is in the middle of the file (``match``), and
a hunk without line numbers whose lines occur once (``match_no_numbers``,
which also counts every occurrence). Best of R runs; the anchor is reading
and splitting the file (``str.split`` of the same text).

Target (issue 20): under 1 s whether it matches or not.

Run: ``.venv/bin/python bench/diff_match.py [--quick]`` (quick: 20,000 lines).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit

TARGET_S = 1.0
HUNK = 2_000


def diff(numbers: bool, file_lines: int) -> str:
    body = [" x = 1"] * (HUNK - 1) + ["-y = 2", "+y = 3"]
    start = file_lines // 2 - HUNK + 2
    header = f"@@ -{start},{HUNK} +{start},{HUNK} @@" if numbers else "@@"
    return "--- a/big.py\n+++ b/big.py\n" + header + "\n" + "\n".join(body) + "\n"


def best_of(repeat: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def measure(quick: bool) -> dict[str, Any]:
    from muxlang.apply import ApplyError, parse_edits, plan_changes

    lines = 20_000 if quick else 100_000
    repeat = 3
    half = lines // 2
    files = {
        "no_match": "x = 1\n" * lines,
        "match": "x = 1\n" * half + "y = 2\n" + "x = 1\n" * (lines - half - 1),
        "match_no_numbers": "x = 1\n" * half + "y = 2\n" + "x = 1\n" * (lines - half - 1),
    }
    out: dict[str, Any] = {"file_lines": lines, "hunk_lines": HUNK, "target_s": TARGET_S}
    cases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in files.items():
            (root / "big.py").write_text(text)
            edits = parse_edits(diff(name != "match_no_numbers", lines))

            def plan(edits: Any = edits) -> None:
                with contextlib.suppress(ApplyError):
                    plan_changes(root, edits)

            seconds = best_of(repeat, plan)
            anchor = best_of(repeat, lambda text=text: text.split("\n"))
            cases[name] = {
                "seconds": round(seconds, 4),
                "ratio_to_split": round(seconds / anchor, 1),
            }
    out["cases"] = cases
    out["worst_s"] = max(case["seconds"] for case in cases.values())
    out["met"] = out["worst_s"] < TARGET_S
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    emit(measure(parser.parse_args().quick))


if __name__ == "__main__":
    main()
