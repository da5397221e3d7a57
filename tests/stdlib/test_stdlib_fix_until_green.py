"""The bundled `fix-until-green` (uses + repeat, issue 21) end to end through the
real command line, with the scripted backends of test_stdlib_e2e: `review` is
called first, then `fix` runs round after round until its verify passes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_stdlib_e2e import BUGGY_CALC, GOOD_CALC, Project, edit_block, environ, project

pytestmark = pytest.mark.slow

__all__ = ["project"]  # the fixture, shared with test_stdlib_e2e


def test_is_strict_clean_in_an_empty_project(tmp_path: Path) -> None:
    argv = ["validate", "--strict", "--format", "json", "fix-until-green"]
    done = subprocess.run(
        [sys.executable, "-m", "muxlang", *argv],
        cwd=tmp_path,
        env=environ(tmp_path),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == []


def test_reviews_then_fixes_until_the_checks_pass(project: Project) -> None:
    (project.root / "calc.py").write_text(BUGGY_CALC)
    project.answer("analyzer", "add subtracts instead of adding (line 2).")
    wrong = edit_block({"path": "calc.py", "old": "a - b", "new": "a * b"})
    right = edit_block({"path": "calc.py", "old": "a - b", "new": "a + b"})
    project.answer("coder", wrong, 1)  # round 1: the answer and both re-asks are wrong
    project.answer("coder", right, 4)  # round 2: right at once

    code, record = project.run_json("fix-until-green", "calc.py")

    assert code == 0, record
    steps = record["steps"]
    assert isinstance(steps, dict)
    assert "return a - b" in steps["review"]["steps"]["diff"]["output"]
    assert steps["review"]["output"] == "add subtracts instead of adding (line 2)."
    fix = steps["fix"]
    assert fix["status"] == "success"
    assert [i["status"] for i in fix["iterations"]] == ["failed", "success"]
    assert fix["iterations"][0]["steps"]["apply"]["attempts"] == 3
    assert fix["steps"]["apply"]["files"] == ["calc.py"]
    assert "calc ok" in fix["steps"]["apply"]["verify_output"]
    assert (project.root / "calc.py").read_text() == GOOD_CALC
    review_prompt, *find_prompts = project.prompts("analyzer")
    assert "return a - b" in review_prompt
    assert len(find_prompts) == 2  # one `find` per round
    assert "Problem reported: add subtracts instead of adding" in find_prompts[0]
    assert len(project.prompts("coder")) == 4


def test_gives_up_after_three_rounds_with_the_tree_as_it_was(project: Project) -> None:
    (project.root / "calc.py").write_text(BUGGY_CALC)
    project.answer("analyzer", "add is wrong.")
    project.answer("coder", edit_block({"path": "calc.py", "old": "a - b", "new": "a * b"}))

    code, record = project.run_json("fix-until-green", "calc.py")

    assert code == 1
    fix = record["steps"]["fix"]  # type: ignore[index]
    assert fix["status"] == "failed"
    assert len(fix["iterations"]) == 3
    assert "still false after 3 iterations" in fix["error"]
    assert (project.root / "calc.py").read_text() == BUGGY_CALC
    assert len(project.prompts("coder")) == 9  # 3 rounds of an answer and 2 re-asks
