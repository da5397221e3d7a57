"""The bundled workflows, end to end through the real command line.

Each test builds a git repository in a temporary directory whose project config
points the roles `analyzer`, `coder` and `quick` at tests/fakes/bin/scripted-llm
(answers read from files, prompts recorded), then runs `muxlang run NAME` as a
user would and checks what the user sees: the output, the exit status, and for
`fix`/`test-gen` the files the apply step changed, created or rolled back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STDLIB = REPO / "stdlib"
SCRIPTED = REPO / "tests" / "fakes" / "bin" / "scripted-llm"
NAMES = ("review", "fix", "explain", "commit-message", "test-gen")

GOOD_CALC = """def add(a, b):
    return a + b


if __name__ == "__main__":
    assert add(2, 3) == 5, f"add(2, 3) returned {add(2, 3)}"
    print("calc ok")
"""
BUGGY_CALC = GOOD_CALC.replace("return a + b", "return a - b")


def environ(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUXLANG_", "GIT_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        NO_COLOR="1",
    )
    return env


@dataclass
class Project:
    root: Path
    script: Path
    env: dict[str, str]

    def answer(self, role: str, text: str, call: int | None = None) -> None:
        """What the scripted backend of ``role`` answers (on call ``call``, or always)."""
        name = role if call is None else f"{role}.{call}"
        (self.script / name).write_text(text, encoding="utf-8")

    def prompts(self, role: str) -> list[str]:
        found = sorted(self.script.glob(f"{role}.prompt.*"), key=lambda p: int(p.suffix[1:]))
        return [p.read_text(encoding="utf-8") for p in found]

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.root, env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def muxlang(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "muxlang", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def run_json(self, *args: str) -> tuple[int, dict[str, object]]:
        done = self.muxlang("run", *args, "--output", "json")
        return done.returncode, json.loads(done.stdout)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "repo"
    script = tmp_path / "script"
    home = tmp_path / "home"
    for d in (root, script, home):
        d.mkdir()
    p = Project(root, script, environ(home))
    lines = []
    for role in ("analyzer", "coder", "quick"):
        lines += [
            f"[backends.scripted-{role}]",
            f"command = {json.dumps(str(SCRIPTED))}",
            f"args = [{json.dumps(str(script))}, {json.dumps(role)}]",
            "max_retries = 0",
            "",
            f"[roles.{role}]",
            f'backends = ["scripted-{role}"]',
            "",
        ]
    # the team gives apply steps their default verify command
    lines += [
        "[teams.calc]",
        'detect = ["calc.py"]',
        'verify = "python3 calc.py && if [ -f test_calc.py ]; then python3 test_calc.py; fi"',
    ]
    (root / ".muxlang").mkdir()
    (root / ".muxlang" / "config.toml").write_text("\n".join(lines) + "\n")
    (root / "calc.py").write_text(GOOD_CALC)
    (root / "README.md").write_text("calc: adds numbers\n")
    p.git("init", "-q")
    p.git("add", ".")
    p.git("commit", "-q", "-m", "initial")
    return p


def edit_block(edits: object) -> str:
    return "Here you go:\n```json\n" + json.dumps(edits, indent=2) + "\n```\n"


# --------------------------------------------------------------------------- static


@pytest.mark.parametrize("name", NAMES)
def test_stdlib_workflow_is_strict_clean_in_an_empty_project(tmp_path: Path, name: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "muxlang", "validate", "--strict", "--format", "json", name],
        cwd=empty,
        env=environ(tmp_path),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == []
    data = tomllib.loads((STDLIB / f"{name}.toml").read_text())
    assert data["name"] == name
    assert data["args"], f"{name} declares no [args]"
    assert all(arg.get("description") for arg in data["args"].values())


def test_stdlib_workflows_are_listed_as_bundled(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "muxlang", "workflows", "--output", "json"],
        cwd=tmp_path,
        env=environ(tmp_path),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    listed = {entry["name"]: entry["source"] for entry in json.loads(done.stdout)}
    assert {name: listed.get(name) for name in NAMES} == dict.fromkeys(NAMES, "stdlib")


# --------------------------------------------------------------------------- review


def test_review_sends_the_uncommitted_diff_to_the_analyzer(project: Project) -> None:
    (project.root / "calc.py").write_text(GOOD_CALC + "\nprint('debug')  # TODO remove\n")
    project.answer("analyzer", "1. A debug print was left in calc.py.\n")

    done = project.muxlang("run", "review")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "1. A debug print was left in calc.py.\n"
    [prompt] = project.prompts("analyzer")
    assert "+print('debug')  # TODO remove" in prompt
    assert "Review these changes" in prompt


def test_review_against_a_base_revision(project: Project) -> None:
    (project.root / "notes.txt").write_text("first\n")
    project.git("add", ".")
    project.git("commit", "-q", "-m", "notes")
    project.answer("analyzer", "Looks fine.")

    code, record = project.run_json("review", "base=HEAD~1")

    assert code == 0
    assert record["steps"]["review"]["output"] == "Looks fine."  # type: ignore[index]
    assert "+first" in project.prompts("analyzer")[0]


def test_review_with_nothing_changed_asks_no_one(project: Project) -> None:
    code, record = project.run_json("review")

    assert code == 0
    assert record["steps"]["review"]["status"] == "skipped"  # type: ignore[index]
    assert project.prompts("analyzer") == []


# --------------------------------------------------------------------------- explain


def test_explain_a_file(project: Project) -> None:
    project.answer("analyzer", "calc.py adds two numbers and checks itself when run.")

    done = project.muxlang("run", "explain", "calc.py")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "calc.py adds two numbers and checks itself when run."
    [prompt] = project.prompts("analyzer")
    assert "Explain what `calc.py` does" in prompt
    assert "def add(a, b):" in prompt


def test_explain_a_symbol_found_with_git_grep(project: Project) -> None:
    project.answer("analyzer", "add returns the sum.")

    done = project.muxlang("run", "explain", "target=add(")

    assert done.returncode == 0, done.stderr
    [prompt] = project.prompts("analyzer")
    assert "calc.py:1:def add(a, b):" in prompt


def test_explain_requires_its_target(project: Project) -> None:
    done = project.muxlang("run", "explain")

    assert done.returncode == 2
    assert "target" in done.stderr
    assert project.prompts("analyzer") == []


# --------------------------------------------------------------------------- commit-message


def test_commit_message_for_the_staged_changes(project: Project) -> None:
    (project.root / "calc.py").write_text(GOOD_CALC.replace("a + b", "b + a"))
    (project.root / "unstaged.txt").write_text("not staged\n")
    project.git("add", "calc.py")
    project.answer("quick", "Swap the operands of add\n\nFor symmetry.\n")

    done = project.muxlang("run", "commit-message", "hint=asked for in review")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "Swap the operands of add\n\nFor symmetry.\n"
    [prompt] = project.prompts("quick")
    assert "+    return b + a" in prompt
    assert "The author adds: asked for in review" in prompt
    assert "unstaged" not in prompt


def test_commit_message_with_nothing_staged_fails_clearly(project: Project) -> None:
    done = project.muxlang("run", "commit-message")

    assert done.returncode == 1
    assert "nothing is staged" in done.stderr
    assert project.prompts("quick") == []


# --------------------------------------------------------------------------- fix


def test_fix_applies_the_edit_after_verify_rejected_the_first_one(project: Project) -> None:
    (project.root / "calc.py").write_text(BUGGY_CALC)
    project.answer("analyzer", "add subtracts instead of adding (line 2).")
    project.answer("coder", edit_block({"path": "calc.py", "old": "a - b", "new": "b - a"}), 1)
    project.answer("coder", edit_block([{"path": "calc.py", "old": "a - b", "new": "a + b"}]), 2)

    code, record = project.run_json("fix", "calc.py", "problem=add(2, 3) is not 5")

    assert code == 0, record
    apply = record["steps"]["apply"]  # type: ignore[index]
    assert apply["status"] == "success"
    assert apply["attempts"] == 2
    assert apply["files"] == ["calc.py"]
    assert "calc ok" in apply["verify_output"]
    assert (project.root / "calc.py").read_text() == GOOD_CALC
    find_prompt = project.prompts("analyzer")[0]
    assert "Problem reported: add(2, 3) is not 5" in find_prompt
    first, again = project.prompts("coder")
    assert "add subtracts instead of adding" in first
    assert "AssertionError: add(2, 3) returned 1" in again  # the re-ask carries verify's output


def test_fix_rolls_back_when_every_answer_fails_verify(project: Project) -> None:
    (project.root / "calc.py").write_text(BUGGY_CALC)
    before = (project.root / "calc.py").read_bytes()
    project.answer("analyzer", "add is wrong.")
    project.answer("coder", edit_block({"path": "calc.py", "old": "a - b", "new": "a * b"}))

    code, record = project.run_json("fix", "calc.py")

    assert code == 1
    apply = record["steps"]["apply"]  # type: ignore[index]
    assert apply["status"] == "failed"
    assert "verify" in apply["error"]
    assert (project.root / "calc.py").read_bytes() == before
    assert len(project.prompts("coder")) == 3  # the answer and verify_retries = 2 re-asks
    assert project.git("status", "--porcelain") == " M calc.py\n"  # only the user's bug


def test_fix_rejects_an_edit_that_does_not_match(project: Project) -> None:
    (project.root / "calc.py").write_text(BUGGY_CALC)
    project.answer("analyzer", "add is wrong.")
    project.answer("coder", edit_block({"path": "calc.py", "old": "no such text", "new": "x"}))

    code, record = project.run_json("fix", "calc.py")

    assert code == 1
    assert (project.root / "calc.py").read_text() == BUGGY_CALC
    error = record["steps"]["apply"]["error"]  # type: ignore[index]
    assert 'edit 1 (calc.py): "old" does not occur in the file' in error


# --------------------------------------------------------------------------- test-gen

PASSING_TESTS = """from calc import add

assert add(1, 1) == 2
assert add(-1, 1) == 0
print("tests ok")
"""


def test_test_gen_creates_the_test_file_and_runs_it(project: Project) -> None:
    project.answer("coder", edit_block({"path": "test_calc.py", "content": PASSING_TESTS}))

    code, record = project.run_json("test-gen", "calc.py", "test_calc.py")

    assert code == 0, record
    assert (project.root / "test_calc.py").read_text() == PASSING_TESTS
    apply = record["steps"]["apply"]  # type: ignore[index]
    assert apply["files"] == ["test_calc.py"]
    assert "tests ok" in apply["verify_output"]
    [prompt] = project.prompts("coder")
    assert "def add(a, b):" in prompt
    assert "Tests that exist already" not in prompt


def test_test_gen_keeps_existing_tests_in_view(project: Project) -> None:
    (project.root / "test_calc.py").write_text("from calc import add\nassert add(0, 0) == 0\n")
    project.answer("coder", edit_block({"path": "test_calc.py", "content": PASSING_TESTS}))

    code, _ = project.run_json("test-gen", "calc.py", "output=test_calc.py")

    assert code == 0
    [prompt] = project.prompts("coder")
    assert "Tests that exist already in test_calc.py" in prompt
    assert "assert add(0, 0) == 0" in prompt


def test_test_gen_removes_a_test_file_that_keeps_failing(project: Project) -> None:
    failing = "from calc import add\nassert add(2, 2) == 5, 'wrong on purpose'\n"
    project.answer("coder", edit_block({"path": "test_calc.py", "content": failing}))

    code, record = project.run_json("test-gen", "calc.py", "test_calc.py")

    assert code == 1
    assert record["steps"]["apply"]["status"] == "failed"  # type: ignore[index]
    assert not (project.root / "test_calc.py").exists()
    assert len(project.prompts("coder")) == 3
    assert "wrong on purpose" in project.prompts("coder")[1]


def test_explain_something_that_is_nowhere_fails_clearly(project: Project) -> None:
    done = project.muxlang("run", "explain", "no_such_symbol_anywhere")

    assert done.returncode == 1
    assert "no_such_symbol_anywhere: not a file, and git grep finds no match" in done.stderr
    assert project.prompts("analyzer") == []


def test_explain_an_empty_target_asks_for_a_file_or_a_symbol(project: Project) -> None:
    done = project.muxlang("run", "explain", "target=")

    assert done.returncode == 1
    assert "explain: give a file path or a symbol" in done.stderr
    assert ": not a file" not in done.stderr
    assert project.prompts("analyzer") == []
