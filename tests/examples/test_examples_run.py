"""Every example in examples/ passes `validate --strict` and runs green through the
real command line, printing what its comments promise.

The examples run in a copy of the repository's examples/ (with README.md and
pyproject.toml beside it, which `hello` reads and `teams` detects), so that
fix-and-verify's build/ never lands in the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.name for p in (REPO / "examples").glob("*.toml"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("examples")
    shutil.copytree(REPO / "examples", root / "examples")
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    (root / ".git").mkdir()  # the project root marker
    return root


def muxlang(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUXLANG_")}
    env.update(HOME=str(root), XDG_CONFIG_HOME=str(root / ".config"), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "muxlang", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_strict_clean(workdir: Path, name: str) -> None:
    done = muxlang(workdir, "validate", "--strict", "--format", "json", f"examples/{name}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == []


def run_ok(root: Path, *args: str) -> str:
    done = muxlang(root, "run", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_hello(workdir: Path) -> None:
    out = run_ok(workdir, "examples/hello.toml")
    # the first run a new user sees answers like an answer, not a description of its prompt
    assert out == "[stand-in] muxlang is a declarative workflow language for LLM work.\n"
    other = run_ok(workdir, "examples/hello.toml", "file=pyproject.toml")
    assert other.startswith("[stand-in] muxlang is a declarative workflow language for LLM work: ")


def test_fix_and_verify_retries_then_passes_on_a_copy(workdir: Path) -> None:
    original = (workdir / "examples/demo/calc.py").read_bytes()

    out = run_ok(workdir, "examples/fix-and-verify.toml")

    assert out == "modified: build/demo/calc.py\nverify passed (attempt 2)\n"
    assert "return a + b" in (workdir / "build/demo/calc.py").read_text()
    assert (workdir / "examples/demo/calc.py").read_bytes() == original


def test_for_each(workdir: Path) -> None:
    counted = [p for p in sorted((workdir / "examples").glob("*.toml")) if p.name != "hello.toml"]
    lines = sum(len(p.read_bytes().splitlines()) for p in counted)

    done = muxlang(workdir, "run", "examples/for-each.toml", "--output", "json")

    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["steps"]["total"]["output"] == f"{lines} lines in {len(counted)} files"
    results = record["steps"]["count"]["results"]
    assert len(results) == len(counted) + 1
    assert [r["status"] for r in results].count("skipped") == 1  # hello.toml, by `if item`
    assert [r["output"].split()[-1] for r in results if r["status"] == "success"] == [
        f"examples/{p.name}" for p in counted
    ]


def test_roles_parallel_fallback_race(workdir: Path) -> None:
    done = muxlang(workdir, "run", "examples/roles.toml", "--output", "json")

    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    # parallel: every backend's answer, in role order
    assert list(steps["panel"]["outputs"]) == ["careful", "quick"]
    assert steps["panel"]["outputs"]["quick"] == "Name one risk of deploying on a Friday."
    assert steps["panel"]["output"].startswith("=== careful ===\n[stand-in] ")
    assert "\n\n=== quick ===\nName one risk of deploying on a Friday." in steps["panel"]["output"]
    # fallback past the broken backend; the race is won by the quick backend (a
    # backend named like the built-in role `quick` is still the backend)
    assert steps["resilient"]["backend"] == "careful"
    assert steps["fastest"]["backend"] == "quick"
    assert steps["fastest"]["duration_ms"] < 2500  # the slow loser (3 s) was cancelled
    assert steps["report"]["output"] == "fallback answered by: careful\nrace won by: quick"


def test_status_functions(workdir: Path) -> None:
    done = muxlang(workdir, "run", "examples/status-functions.toml", "--output", "json")

    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    steps = record["steps"]
    assert record["success"] is True
    assert steps["check"]["status"] == "failed"
    assert steps["on-failure"]["output"] == "check failed with exit code 3"
    assert steps["on-success"]["status"] == "skipped"
    assert steps["cleanup"]["output"] == "cleanup ran"
    assert run_ok(workdir, "examples/status-functions.toml") == "cleanup ran\n"


def test_teams_detected_and_overridden(workdir: Path) -> None:
    detected = muxlang(workdir, "run", "examples/teams.toml", "--output", "json")
    forced = muxlang(workdir, "run", "examples/teams.toml", "--team", "rust", "--output", "json")

    assert detected.returncode == 0, detected.stderr
    steps = json.loads(detected.stdout)["steps"]
    assert steps["which"]["output"] == "detected team: python"
    assert steps["python-only"]["output"].startswith("Python 3.")
    assert steps["rust-only"]["status"] == "skipped"
    assert forced.returncode == 0, forced.stderr
    steps = json.loads(forced.stdout)["steps"]
    assert steps["which"]["output"] == "detected team: rust"
    assert steps["rust-only"]["output"] == "this is a Rust project"
    assert steps["python-only"]["status"] == "skipped"


def test_examples_cover_every_feature() -> None:
    docs = {
        name: tomllib.loads((REPO / "examples" / name).read_text(encoding="utf-8"))
        for name in EXAMPLES
    }
    steps = [step for doc in docs.values() for step in doc.get("steps", [])]
    features = {
        "shell": any(s["type"] == "shell" for s in steps),
        "query": any(s["type"] == "query" for s in steps),
        "apply with verify": any(s["type"] == "apply" and "verify" in s for s in steps),
        "depends_on inferred": any(
            "depends_on" not in s and "steps." in s.get("prompt", s.get("run", "")) for s in steps
        ),
        "explicit depends_on": any("depends_on" in s for s in steps),
        "args": any(doc.get("args") for doc in docs.values()),
        "env in shell": any(s["type"] == "shell" and s.get("env") for s in steps),
        "continue_on_error": any(s.get("continue_on_error") for s in steps),
        "for_each with fail_fast and max_parallel": any(
            "for_each" in s and "fail_fast" in s and "max_parallel" in s for s in steps
        ),
        "if per item": any("for_each" in s and "item" in s.get("if", "") for s in steps),
        "team conditions": any("team" in s.get("if", "") for s in steps),
        "teams": any(doc.get("teams") for doc in docs.values()),
    }
    for function in ("success()", "failure()", "always()"):
        features[f"if {function}"] = any(function in s.get("if", "") for s in steps)
    roles = [role for doc in docs.values() for role in doc.get("roles", {}).values()]
    for mode in ("parallel", "fallback", "race"):
        features[f"{mode} role"] = any(role.get("execution") == mode for role in roles)
    assert [name for name, present in features.items() if not present] == []
